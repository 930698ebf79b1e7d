/**
 * Runs SQL statements against a SQLite file on a worker thread, so that long statements
 * (`VACUUM INTO` of a large database, `VACUUM`) do not stall the caller's event loop: an
 * executive's Raft loop and HTTP server go on while a snapshot is copied.
 *
 * The worker is built from source text (a blob URL) rather than a module file, so it works the
 * same from the sources, from `deno bundle`'s single file and from a compiled binary.
 */

const WORKER_SOURCE = `
import { DatabaseSync } from "node:sqlite";
self.onmessage = (event) => {
  const { path, readOnly, statements } = event.data;
  try {
    const db = new DatabaseSync(path, { readOnly });
    try {
      for (const sql of statements) db.exec(sql);
    } finally {
      db.close();
    }
    self.postMessage({ ok: true });
  } catch (err) {
    self.postMessage({ ok: false, message: String(err && err.message ? err.message : err) });
  }
};
`;

/** A SQL string literal (for statements that cannot take parameters, such as VACUUM INTO). */
export function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * Opens `path` on a fresh worker thread, runs `statements` in order with `exec`, closes it.
 * Rejects with the SQLite error when one fails (later ones do not run).
 */
export function execInWorker(
  path: string,
  statements: readonly string[],
  options: { readOnly?: boolean } = {},
): Promise<void> {
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  return new Promise<void>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<{ ok: boolean; message?: string }>) => {
      if (e.data.ok) resolve();
      else reject(new Error(`SQLite on ${path}: ${e.data.message}`));
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      reject(new Error(`SQLite worker for ${path} failed: ${e.message}`));
    };
    worker.postMessage({ path, readOnly: options.readOnly ?? false, statements: [...statements] });
  }).finally(() => {
    worker.terminate();
    URL.revokeObjectURL(url);
  });
}
