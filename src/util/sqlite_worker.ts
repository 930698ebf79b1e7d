/**
 * Runs SQL statements against a SQLite file on a low-priority worker thread
 * (`one_shot_worker.ts`), so that long statements (`VACUUM INTO` of a large database, `VACUUM`)
 * do not stall the caller's event loop: an executive's Raft loop and HTTP server go on while a
 * snapshot is copied.
 */

import { DatabaseSync } from "node:sqlite";
import { startBackgroundSync } from "./background_sync.ts";
import { LOW_PRIORITY_PRELUDE, runOneShotWorker } from "./one_shot_worker.ts";

const WORKER_SOURCE = LOW_PRIORITY_PRELUDE + `
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

/** How often a bulk-written file is flushed while a worker writes it. */
const FLUSH_EVERY_MS = 25;

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
  options: {
    readOnly?: boolean;
    /**
     * A file the statements write in bulk (a `VACUUM INTO` target), flushed every few tens of
     * milliseconds meanwhile: left to pile up, its dirty pages make this process's next log
     * fsync wait behind all of them (ext4, data=ordered; measured: a 50 MB file stalls a
     * concurrent 0.2 ms fdatasync for 250 ms).
     */
    flush?: string;
  } = {},
): Promise<void> {
  const flusher = options.flush === undefined
    ? undefined
    : startBackgroundSync(options.flush, FLUSH_EVERY_MS);
  return runOneShotWorker(WORKER_SOURCE, {
    path,
    readOnly: options.readOnly ?? false,
    statements: [...statements],
  }, { failed: `SQLite on ${path}`, crashed: `SQLite worker for ${path} failed` })
    .then(() => {})
    .finally(async () => {
      await flusher?.stop();
    });
}

/**
 * A consistent copy of the database at `path` written to `dest`, which must not exist yet
 * (`VACUUM INTO` from a read transaction of its own, on a worker, flushed as it is written), and
 * what `inspect` reads from the copy. Nothing of the copy passes through this thread.
 */
export async function copyDatabaseToFile<T>(
  path: string,
  dest: string,
  inspect: (copy: DatabaseSync) => T,
): Promise<T> {
  await execInWorker(path, [`VACUUM INTO ${sqlString(dest)}`], { readOnly: true, flush: dest });
  const copy = new DatabaseSync(dest, { readOnly: true });
  try {
    return inspect(copy);
  } finally {
    copy.close();
  }
}

/**
 * `copyDatabaseToFile` into a temporary file, and the copy's bytes (read back asynchronously)
 * with what `inspect` read from it; the file is deleted. For states small enough to hold.
 */
export async function copyDatabase<T>(
  path: string,
  inspect: (copy: DatabaseSync) => T,
): Promise<{ data: Uint8Array; inspected: T }> {
  const dir = await Deno.makeTempDir({ prefix: "ctl-sqlite-copy-" });
  try {
    const file = `${dir}/copy.db`;
    const inspected = await copyDatabaseToFile(path, file, inspect);
    return { data: await Deno.readFile(file), inspected };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
