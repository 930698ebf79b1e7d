/**
 * Writes a large file atomically on a worker thread. Writing tens of megabytes from the main
 * thread stalls its event loop whenever the kernel throttles a writer that dirties pages faster
 * than the disk takes them (measured: 24–58 ms gaps per 60 MB file under disk load; 240–370 ms
 * on a busy executive), and an executive's Raft loop and HTTP server live on that thread.
 *
 * The file is the concatenation of `parts` (byte arrays, or other files' contents, which the worker
 * reads itself, so they never enter the caller's memory), optionally followed by the
 * little-endian CRC-32 of everything before it; written under a temporary name, flushed every
 * 4 MiB, fsynced, renamed, and its directory fsynced, on a low-priority worker of its own.
 */

import { dirname } from "node:path";
import { LOW_PRIORITY_PRELUDE, runOneShotWorker, type WorkerAnswer } from "./one_shot_worker.ts";

/**
 * Flushed every this many bytes: one fsync of a whole 50 MB snapshot made the Raft log's next
 * fdatasync wait 260 ms behind it (ext4 data=ordered), against 4–7 ms in 4 MiB steps.
 */
const FLUSH_EVERY_BYTES = 4 * 1024 * 1024;

/**
 * The bytes handed to the worker at a time: each slice is copied out on the main thread and
 * transferred, and the next one goes when the worker has written this one. Posting the whole
 * file at once cloned it in one go on the main thread (192 MB: 520–730 ms held). Copying runs
 * at only ~370 MB/s on this VM (fresh pages fault in), so an 8 MiB slice held the loop 22–28
 * ms, against 2–3 ms for 1 MiB.
 */
const SLICE_BYTES = 1024 * 1024;

const WORKER_SOURCE = LOW_PRIORITY_PRELUDE + `
import { crc32 } from "node:zlib";
let job = null;
const fail = async (err) => {
  if (job) {
    try { job.file.close(); } catch { /* closed */ }
    try { await Deno.remove(job.tmp); } catch { /* never created */ }
    job = null;
  }
  self.postMessage({ ok: false, message: String(err && err.message ? err.message : err) });
};
const write = async (bytes) => {
  for (let at = 0; at < bytes.length;) {
    const piece = bytes.subarray(at, at + ${FLUSH_EVERY_BYTES});
    let written = 0;
    while (written < piece.length) written += await job.file.write(piece.subarray(written));
    at += piece.length;
    job.sinceFlush += piece.length;
    if (job.sinceFlush >= ${FLUSH_EVERY_BYTES}) {
      await job.file.syncData();
      job.sinceFlush = 0;
    }
  }
};
// One message at a time: the main thread waits for each answer before it sends the next.
self.onmessage = async (event) => {
  const m = event.data;
  try {
    if (m.kind === "open") {
      const file = await Deno.open(m.tmp, { write: true, create: true, truncate: true });
      job = { ...m, file, crc: 0, sinceFlush: 0 };
    } else if (m.kind === "slice") {
      if (job.appendCrc32) job.crc = crc32(m.bytes, job.crc);
      await write(m.bytes);
    } else if (m.kind === "file") {
      const src = await Deno.open(m.path, { read: true });
      try {
        const buf = new Uint8Array(${FLUSH_EVERY_BYTES});
        for (;;) {
          const n = await src.read(buf);
          if (n === null) break;
          const bytes = buf.subarray(0, n);
          if (job.appendCrc32) job.crc = crc32(bytes, job.crc);
          await write(bytes);
        }
      } finally {
        src.close();
      }
    } else {
      if (job.appendCrc32) {
        const tail = new Uint8Array(4);
        new DataView(tail.buffer).setUint32(0, job.crc >>> 0, true);
        await write(tail);
      }
      await job.file.sync();
      job.file.close();
      await Deno.rename(job.tmp, job.path);
      const d = await Deno.open(job.dir, { read: true });
      try { await d.sync(); } finally { d.close(); }
      job = null;
    }
    self.postMessage({ ok: true });
  } catch (err) {
    await fail(err);
  }
};
`;

/** Part of a file written by `writeFileAtomicInWorker`: bytes, or the contents of a file. */
export type FilePart = Uint8Array | { file: string };

/**
 * Writes `parts` (then their CRC-32 when asked) to `path` atomically, off the main thread. The
 * caller keeps its buffers: they are copied to the worker a slice at a time. A `{ file }` part
 * is read by the worker.
 */
export async function writeFileAtomicInWorker(
  path: string,
  parts: readonly FilePart[],
  options: { appendCrc32?: boolean } = {},
): Promise<void> {
  const dir = dirname(path);
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  let answered: ((a: { ok: boolean; message?: string }) => void) | null = null;
  let crashed: Error | null = null;
  worker.onmessage = (e) => answered?.(e.data);
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    crashed = new Error(`File worker for ${path} failed: ${e.message}`);
    answered?.({ ok: false });
  };
  const send = async (message: unknown, transfer: Transferable[] = []) => {
    if (crashed) throw crashed; // failed to start
    const answer = new Promise<{ ok: boolean; message?: string }>((r) => (answered = r));
    worker.postMessage(message, transfer);
    const a = await answer;
    if (crashed) throw crashed;
    if (!a.ok) throw new Error(`Cannot write ${path}: ${a.message}`);
  };
  try {
    await send({ kind: "open", path, tmp, dir, appendCrc32: !!options.appendCrc32 });
    for (const part of parts) {
      if (!(part instanceof Uint8Array)) {
        await send({ kind: "file", path: part.file });
        continue;
      }
      for (let at = 0; at < part.length; at += SLICE_BYTES) {
        const bytes = part.slice(at, at + SLICE_BYTES);
        await send({ kind: "slice", bytes }, [bytes.buffer]);
      }
    }
    await send({ kind: "end" });
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
}

const READ_SOURCE = LOW_PRIORITY_PRELUDE + `
import { crc32 } from "node:zlib";
self.onmessage = async (event) => {
  try {
    const buf = await Deno.readFile(event.data.path);
    if (buf.length < 4) {
      self.postMessage({ ok: true, intact: false });
      return;
    }
    const bodyBytes = buf.length - 4;
    const stored = new DataView(buf.buffer, buf.byteOffset).getUint32(bodyBytes, true);
    const intact = (crc32(buf.subarray(0, bodyBytes)) >>> 0) === stored;
    self.postMessage({ ok: true, intact, buffer: buf.buffer, bodyBytes }, [buf.buffer]);
  } catch (err) {
    const notFound = err instanceof Deno.errors.NotFound;
    self.postMessage({ ok: notFound, notFound, message: String(err?.message ?? err) });
  }
};
`;

/** A file whose CRC-32 does not match its contents. */
export class DamagedFileError extends Error {
  constructor(readonly path: string) {
    super(`File ${path} is damaged: its CRC-32 does not match`);
    this.name = "DamagedFileError";
  }
}

/**
 * Reads a file written with `appendCrc32` on a worker thread, checks its CRC-32 there, and hands
 * back everything before the checksum without a copy. Null when the file does not exist; a
 * `DamagedFileError` when it is damaged. Reading and checking hundreds of megabytes on the main thread would
 * hold the Raft loop and the HTTP server for as long.
 */
export async function readCheckedFileInWorker(path: string): Promise<Uint8Array | null> {
  const a = await runOneShotWorker<
    WorkerAnswer & {
      notFound?: boolean;
      intact?: boolean;
      buffer?: ArrayBuffer;
      bodyBytes?: number;
    }
  >(READ_SOURCE, { path }, {
    failed: `Cannot read ${path}`,
    crashed: `File worker reading ${path} failed`,
  });
  if (a.notFound) return null;
  if (!a.intact || a.buffer === undefined) throw new DamagedFileError(path);
  return new Uint8Array(a.buffer, 0, a.bodyBytes);
}
