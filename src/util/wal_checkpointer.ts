/**
 * Checkpoints a WAL-mode SQLite database from a worker thread with a connection of its own.
 *
 * A checkpoint copies the WAL's pages into the database file and fsyncs both. SQLite's
 * auto-checkpoint does that inside the COMMIT that crosses its threshold, on the committing
 * thread: for an executive that is the Raft loop, which then waited for two fsyncs of megabytes
 * each (with 100-row batches, every few commits). The owner turns auto-checkpoint off on its
 * connection and calls `afterCommit()` after its commits; the worker runs PASSIVE checkpoints, which
 * never block the writer or readers (frames still in use are left for the next one).
 */

import { LOW_PRIORITY_PRELUDE } from "./one_shot_worker.ts";

const WORKER_SOURCE = LOW_PRIORITY_PRELUDE + `
import { DatabaseSync } from "node:sqlite";
let db = null;
const failed = (err) => ({ ok: false, message: String(err && err.message ? err.message : err) });
self.onmessage = (event) => {
  const { op } = event.data;
  if (op === "open") {
    try {
      db = new DatabaseSync(event.data.path);
      db.exec("PRAGMA wal_autocheckpoint = 0");
      self.postMessage({ ok: true, op });
    } catch (err) {
      self.postMessage({ ...failed(err), op });
    }
  } else if (op === "checkpoint") {
    try {
      const r = db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get();
      self.postMessage({ ok: true, op, log: r.log, checkpointed: r.checkpointed });
    } catch (err) {
      self.postMessage({ ...failed(err), op });
    }
  } else if (op === "close") {
    try { if (db) db.close(); } catch { /* closing is best effort */ }
    db = null;
    const flag = new Int32Array(event.data.flag);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    self.close();
  }
};
`;

/** What the worker reports after a checkpoint: WAL frames, and how many are in the database. */
export interface CheckpointReport {
  log: number;
  checkpointed: number;
}

/** How long `close()` waits for a checkpoint in progress to end. */
const CLOSE_WAIT_MS = 30_000;

/** A worker that checkpoints one database file on request. */
export class WalCheckpointer {
  readonly #worker: Worker;
  readonly #url: string;
  readonly #minIntervalMs: number;
  #busy = true; // until the worker has opened its connection
  #pending = false;
  #lastStartMs = -Infinity;
  #closed = false;
  #crashed = false;
  #completed = false;
  #waiters: ((r: CheckpointReport) => void)[] = [];

  /**
   * Opens `path` on a new worker. `onFailure` hears of a connection or checkpoint that failed
   * (the owner may then turn its own auto-checkpoint back on). Checkpoints start at most every
   * `minIntervalMs`.
   */
  constructor(
    path: string,
    private readonly onFailure: (message: string) => void,
    minIntervalMs = 200,
  ) {
    this.#minIntervalMs = minIntervalMs;
    this.#url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    this.#worker = new Worker(this.#url, { type: "module" });
    this.#worker.onmessage = (e) => this.#answer(e.data);
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#busy = true; // nothing more will be asked of a crashed worker
      this.#crashed = true;
      this.onFailure(`checkpoint worker crashed: ${e.message}`);
    };
    this.#worker.postMessage({ op: "open", path });
  }

  #answer(
    m: { ok: boolean; op: string; message?: string; log?: number; checkpointed?: number },
  ): void {
    if (!m.ok) {
      this.onFailure(`${m.op === "open" ? "cannot open" : "checkpoint failed"}: ${m.message}`);
      if (m.op === "open") return; // stays busy: no checkpoints without a connection
    }
    this.#busy = false;
    if (m.op === "checkpoint" && m.ok) {
      this.#completed = true;
      const report = { log: m.log!, checkpointed: m.checkpointed! };
      for (const w of this.#waiters.splice(0)) w(report);
    }
    if (this.#pending) this.poke();
  }

  /**
   * Asks for a checkpoint. Returns at once; one runs at a time, at most every `minIntervalMs`
   * (a poke meanwhile is remembered and served when the running one ends).
   */
  poke(): void {
    if (this.#closed) return;
    if (this.#busy || performance.now() - this.#lastStartMs < this.#minIntervalMs) {
      this.#pending = true;
      if (!this.#busy) this.#scheduleLater();
      return;
    }
    this.#pending = false;
    this.#busy = true;
    this.#lastStartMs = performance.now();
    this.#worker.postMessage({ op: "checkpoint" });
  }

  #timer: ReturnType<typeof setTimeout> | undefined;

  #scheduleLater(): void {
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, this.#minIntervalMs - (performance.now() - this.#lastStartMs));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#pending) this.poke();
    }, wait);
  }

  /**
   * For the owner to call after each of its commits: asks for a checkpoint (`poke`) and, once
   * after each checkpoint the worker completed, runs `finishHere`, the owner's own PASSIVE
   * checkpoint between two of its transactions: only the frames written meanwhile are left to
   * copy, and with none added during it SQLite starts the WAL over at the next write.
   * Checkpoints that run beside a busy writer never catch up with it, so without this the WAL
   * would grow for as long as writes go on.
   */
  afterCommit(finishHere: () => void): void {
    this.poke();
    if (!this.#completed) return;
    this.#completed = false;
    finishHere();
  }

  /** Resolves with the report of the next checkpoint that ends (for tests and tools). */
  nextReport(): Promise<CheckpointReport> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Closes the worker's connection and ends it, synchronously (waiting for a checkpoint in
   * progress): the owner may replace or delete the database file right after.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    if (!this.#crashed) {
      const flag = new SharedArrayBuffer(4);
      this.#worker.postMessage({ op: "close", flag });
      if (Atomics.wait(new Int32Array(flag), 0, 0, CLOSE_WAIT_MS) === "timed-out") {
        this.onFailure("checkpoint worker did not close in time");
      }
    }
    this.#worker.terminate();
    URL.revokeObjectURL(this.#url);
  }
}
