/**
 * Flushes a file that another part of the process is writing synchronously, from a worker
 * thread. `VACUUM INTO` blocks the main thread while it writes the whole copy, and the copy's
 * dirty pages would pile up in the kernel; on journaling file systems (ext4 data=ordered) the
 * LDB writer's next fsync then waits behind hundreds of megabytes of writeback (measured: writer
 * stalls of 100–200 ms during a 1 GB copy). Flushing the copy every few tens of milliseconds keeps
 * each flush small.
 *
 * The worker's code is inline (a blob URL), so `deno compile` needs no extra `--include`.
 */

const WORKER_SOURCE = `
let stopped = false;
let flushes = 0;
self.onmessage = async (event) => {
  if (event.data === "stop") { stopped = true; return; }
  const { path, everyMs } = event.data;
  while (!stopped) {
    await new Promise((r) => setTimeout(r, everyMs));
    try {
      const file = await Deno.open(path, { read: true });
      try { await file.syncData(); flushes++; } finally { file.close(); }
    } catch {
      // Not created yet, or already removed: nothing to flush.
    }
  }
  self.postMessage(flushes);
};
`;

/** A running background flusher. */
export interface BackgroundSync {
  /** Ends the worker; resolves to the number of flushes done (-1 when it did not answer). */
  stop(): Promise<number>;
}

/** Starts flushing `path` every `everyMs` from a worker thread. */
export function startBackgroundSync(path: string, everyMs = 50): BackgroundSync {
  const url = URL.createObjectURL(
    new Blob([WORKER_SOURCE], { type: "application/javascript" }),
  );
  const worker = new Worker(url, { type: "module" });
  worker.postMessage({ path, everyMs });
  let stopping: Promise<number> | undefined;
  return {
    stop() {
      stopping ??= new Promise<number>((resolve) => {
        const done = (flushes: number) => {
          worker.terminate();
          URL.revokeObjectURL(url);
          resolve(flushes);
        };
        const timer = setTimeout(() => done(-1), everyMs * 4 + 1_000);
        worker.onmessage = (event: MessageEvent<number>) => {
          clearTimeout(timer);
          done(event.data);
        };
        worker.postMessage("stop");
      });
      return stopping;
    },
  };
}
