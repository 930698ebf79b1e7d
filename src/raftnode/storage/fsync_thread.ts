/**
 * A thread of the log's own that runs its fdatasyncs, so that the caller can wait for one either
 * on its own thread, for a bounded time (`waitSync`), or through the event loop (`wait`).
 *
 * Why not the shared thread pool: a `syncData()` there wakes the event loop when it ends, and that
 * hand-off back costs 30–90 µs here; a follower's acknowledgement, which a commit waits for, would
 * pay it on every append. Why not `syncDataSync()` on the caller's thread: while the disk is slow
 * (another process's writeback in front of the fsync: 5–40 ms here) the thread could do nothing
 * else, not even apply what is already committed. This thread is woken through a futex
 * (`Atomics.notify`), and the caller stops waiting on its own thread after `waitMs`.
 *
 * The thread opens the file by path: an fdatasync flushes the file, whichever descriptor it is
 * called on. Requests and answers pass through a SharedArrayBuffer, never through messages: the
 * thread blocks in `Atomics.wait` and never runs its event loop after it starts.
 */
import { StorageError } from "./types.ts";

// Int32 slots of the shared buffer.
/** Requests made (the caller increments it). */
const REQUESTED = 0;
/** The last request answered (the thread sets it). */
const DONE = 1;
/** 1 when the last answered request failed. */
const FAILED = 2;
/** Bumped by the caller whenever the path changes. */
const PATH_GEN = 3;
const PATH_LEN = 4;
const ERROR_LEN = 5;
/** 1 asks the thread to end. */
const STOP = 6;
const SLOTS = 8;
const PATH_BYTES_MAX = 4096;
const ERROR_BYTES_MAX = 1024;
/** Byte offsets of the path and the error message, after the slots. */
const PATH_AT = SLOTS * 4;
const ERROR_AT = PATH_AT + PATH_BYTES_MAX;

/** The thread's source: a blob URL, so it works from the sources and from `deno bundle` alike. */
const WORKER_SOURCE = `
const REQUESTED = ${REQUESTED}, DONE = ${DONE}, FAILED = ${FAILED}, PATH_GEN = ${PATH_GEN};
const PATH_LEN = ${PATH_LEN}, ERROR_LEN = ${ERROR_LEN}, STOP = ${STOP};
const PATH_AT = ${PATH_AT}, ERROR_AT = ${ERROR_AT}, ERROR_BYTES_MAX = ${ERROR_BYTES_MAX};
self.onmessage = (e) => {
  self.onmessage = null;
  const sab = e.data;
  const s = new Int32Array(sab, 0, ${SLOTS});
  const bytes = new Uint8Array(sab);
  let file = null;
  let gen = -1;
  let answered = 0;
  for (;;) {
    if (Atomics.load(s, STOP) !== 0) break;
    const requested = Atomics.load(s, REQUESTED);
    if (requested === answered) {
      Atomics.wait(s, REQUESTED, answered);
      continue;
    }
    let failed = 0;
    try {
      const g = Atomics.load(s, PATH_GEN);
      if (file === null || g !== gen) {
        file?.close();
        file = null;
        const path = new TextDecoder().decode(bytes.slice(PATH_AT, PATH_AT + s[PATH_LEN]));
        file = Deno.openSync(path, { read: true, write: true });
        gen = g;
      }
      file.syncDataSync();
    } catch (err) {
      failed = 1;
      const text = new TextEncoder().encode(String(err?.message ?? err)).slice(0, ERROR_BYTES_MAX);
      bytes.set(text, ERROR_AT);
      s[ERROR_LEN] = text.length;
      try { file?.close(); } catch { /* already unusable */ }
      file = null;
    }
    Atomics.store(s, FAILED, failed);
    answered = requested;
    Atomics.store(s, DONE, requested);
    Atomics.notify(s, DONE);
  }
  try { file?.close(); } catch { /* closing anyway */ }
  self.close();
};
`;

/** One log's fsync thread. Not safe for overlapping requests: the log serialises its appends. */
export class FsyncThread {
  readonly #slots: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #worker: Worker;
  readonly #url: string;
  #requested = 0;
  #path: string | null = null;
  #crashed: string | null = null;
  #closed = false;

  constructor() {
    const sab = new SharedArrayBuffer(ERROR_AT + ERROR_BYTES_MAX);
    this.#slots = new Int32Array(sab, 0, SLOTS);
    this.#bytes = new Uint8Array(sab);
    this.#url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    this.#worker = new Worker(this.#url, { type: "module" });
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#crashed = e.message;
      Atomics.notify(this.#slots, DONE); // wakes a `wait()` to report it
    };
    this.#worker.postMessage(sab);
  }

  /** Asks for an fdatasync of the file at `path`; the previous request must have been answered. */
  request(path: string): void {
    if (this.#closed) throw new StorageError("STORAGE_CLOSED", "Cannot fsync: log is closed");
    this.#assertAnswered();
    if (path !== this.#path) {
      const encoded = new TextEncoder().encode(path);
      if (encoded.length > PATH_BYTES_MAX) {
        throw new Error(`Cannot fsync ${path}: path longer than 4 KiB`);
      }
      this.#bytes.set(encoded, PATH_AT);
      this.#slots[PATH_LEN] = encoded.length;
      Atomics.add(this.#slots, PATH_GEN, 1);
      this.#path = path;
    }
    this.#requested++;
    Atomics.store(this.#slots, REQUESTED, this.#requested);
    Atomics.notify(this.#slots, REQUESTED);
  }

  /**
   * Waits on this thread, up to `waitMs`, for the request: true when the fsync is done (throws
   * when it failed), false when it is still running.
   */
  waitSync(waitMs: number): boolean {
    const deadline = performance.now() + waitMs;
    for (;;) {
      const done = Atomics.load(this.#slots, DONE);
      if (done === this.#requested) return this.#answer();
      const left = deadline - performance.now();
      if (left <= 0 || this.#crashed !== null) return false;
      Atomics.wait(this.#slots, DONE, done, left);
    }
  }

  /** Waits for the request through the event loop; throws when the fsync failed. */
  async wait(): Promise<void> {
    for (;;) {
      if (this.#crashed !== null) {
        throw new Error(`The log's fsync thread failed: ${this.#crashed}`);
      }
      const done = Atomics.load(this.#slots, DONE);
      if (done === this.#requested) {
        this.#answer();
        return;
      }
      const waiting = Atomics.waitAsync(this.#slots, DONE, done);
      if (waiting.async) await waiting.value;
    }
  }

  /**
   * Ends the thread (a live worker keeps the process running), after the request in flight if
   * any: `terminate()` alone does not interrupt an `Atomics.wait`.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#slots, STOP, 1);
    Atomics.notify(this.#slots, REQUESTED);
    this.#worker.terminate();
    URL.revokeObjectURL(this.#url);
  }

  #answer(): true {
    if (Atomics.load(this.#slots, FAILED) === 0) return true;
    const message = new TextDecoder().decode(
      this.#bytes.slice(ERROR_AT, ERROR_AT + this.#slots[ERROR_LEN]),
    );
    throw new Error(`Cannot fsync ${this.#path}: ${message}`);
  }

  #assertAnswered(): void {
    if (Atomics.load(this.#slots, DONE) !== this.#requested) {
      throw new Error("FsyncThread invariant broken: a request while one is in flight");
    }
  }
}
