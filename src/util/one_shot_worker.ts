/**
 * A worker thread for one job: built from module source text (a blob URL, so it works the same
 * from the sources, from `deno bundle`'s single file and from a compiled binary), sent one
 * message, ended after its one answer. The source answers `{ ok: true, ... }` or
 * `{ ok: false, message }`.
 */

/**
 * Source lines that lower the worker thread's CPU priority to nice 10 (on Linux setpriority
 * applies to the calling thread only): bulk copies must not take the cores from the Raft loop
 * and the HTTP server, which have deadlines. Put first in a worker's source.
 */
export const LOW_PRIORITY_PRELUDE = `
import { setPriority as lowerPriority } from "node:os";
try { lowerPriority(0, 10); } catch { /* not permitted here: run at normal priority */ }
`;

/** What a one-shot worker answers. */
export interface WorkerAnswer {
  ok: boolean;
  message?: string;
}

/**
 * Runs `source` on a fresh worker with `message` and resolves to its answer. A `{ ok: false }`
 * answer rejects with `${failed}: ${message}`, a crash with `${crashed}: ${error}`.
 */
export function runOneShotWorker<T extends WorkerAnswer>(
  source: string,
  message: unknown,
  errors: { failed: string; crashed: string },
): Promise<T> {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  return new Promise<T>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<T>) => {
      if (e.data.ok) resolve(e.data);
      else reject(new Error(`${errors.failed}: ${e.data.message}`));
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      reject(new Error(`${errors.crashed}: ${e.message}`));
    };
    worker.postMessage(message);
  }).finally(() => {
    worker.terminate();
    URL.revokeObjectURL(url);
  });
}
