/**
 * Writes a large file atomically on a worker thread. Writing tens of megabytes from the main
 * thread stalls its event loop whenever the kernel throttles a writer that dirties pages faster
 * than the disk takes them (measured: 24–58 ms gaps per 60 MB file under disk load; 240–370 ms
 * on a busy executive), and an executive's Raft loop and HTTP server live on that thread.
 *
 * The file is the concatenation of `parts`, optionally followed by the little-endian CRC-32 of
 * everything before it; written under a temporary name, flushed every 4 MiB, fsynced, renamed,
 * and its directory fsynced, on a low-priority one-shot worker (`one_shot_worker.ts`).
 */

import { dirname } from "node:path";
import { LOW_PRIORITY_PRELUDE, runOneShotWorker } from "./one_shot_worker.ts";

/**
 * Flushed every this many bytes: one fsync of a whole 50 MB snapshot made the Raft log's next
 * fdatasync wait 260 ms behind it (ext4 data=ordered), against 4–7 ms in 4 MiB steps.
 */
const FLUSH_EVERY_BYTES = 4 * 1024 * 1024;

const WORKER_SOURCE = LOW_PRIORITY_PRELUDE + `
import { crc32 } from "node:zlib";
self.onmessage = async (event) => {
  const { path, tmp, dir, parts, appendCrc32 } = event.data;
  try {
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      let crc = 0;
      let sinceFlush = 0;
      const write = async (bytes) => {
        for (let at = 0; at < bytes.length;) {
          const piece = bytes.subarray(at, at + ${FLUSH_EVERY_BYTES});
          let written = 0;
          while (written < piece.length) written += await file.write(piece.subarray(written));
          at += piece.length;
          sinceFlush += piece.length;
          if (sinceFlush >= ${FLUSH_EVERY_BYTES}) {
            await file.syncData();
            sinceFlush = 0;
          }
        }
      };
      for (const part of parts) {
        if (appendCrc32) crc = crc32(part, crc);
        await write(part);
      }
      if (appendCrc32) {
        const tail = new Uint8Array(4);
        new DataView(tail.buffer).setUint32(0, crc >>> 0, true);
        await write(tail);
      }
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
    const d = await Deno.open(dir, { read: true });
    try { await d.sync(); } finally { d.close(); }
    self.postMessage({ ok: true });
  } catch (err) {
    try { await Deno.remove(tmp); } catch { /* never created */ }
    self.postMessage({ ok: false, message: String(err && err.message ? err.message : err) });
  }
};
`;

/** Writes `parts` (then their CRC-32 when asked) to `path` atomically, off the main thread. */
export function writeFileAtomicInWorker(
  path: string,
  parts: readonly Uint8Array[],
  options: { appendCrc32?: boolean } = {},
): Promise<void> {
  const dir = dirname(path);
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  // Cloned, not transferred: callers keep their buffers (a Raft snapshot stays in memory).
  return runOneShotWorker(
    WORKER_SOURCE,
    { path, tmp, dir, parts: [...parts], appendCrc32: !!options.appendCrc32 },
    { failed: `Cannot write ${path}`, crashed: `File worker for ${path} failed` },
  ).then(() => {});
}
