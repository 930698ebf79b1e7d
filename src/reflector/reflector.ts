/**
 * The reflector: follows the ledger from the LDB's `_ldb_seq` into the LDB, exactly once and in
 * order, from a list of executives.
 *
 * It reads one executive's NDJSON stream (or long poll); when the stream breaks, errors, goes
 * silent or serves a gap, it moves to the next executive after an exponential backoff with
 * jitter. It never polls on a fixed interval. Each batch that arrived together is applied in one
 * SQLite transaction (see LdbWriter), its changelog lines fsynced before COMMIT.
 */
import { LdbError } from "../ldb/errors.ts";
import { LdbWriter } from "../ldb/writer.ts";
import type { LedgerEntry } from "../ledger/types.ts";
import { log } from "../util/log.ts";
import { Changelog, type ChangelogOptions } from "./changelog.ts";
import { type LedgerBatch, LedgerSourceError, readLedger } from "./ledger_source.ts";
import { sleep } from "../util/sleep.ts";
import { WalCheckpointer } from "../util/wal_checkpointer.ts";

export interface ReflectorOptions {
  /** The LDB file (created with its directories when missing). */
  ldbPath: string;
  /** Executive base URLs, tried in order, round-robin on failure. */
  executives: readonly string[];
  /** Apply only these families' ops (the seq still advances past other families' entries). */
  families?: readonly string[];
  /** Write a changelog line per changed row. */
  changelog?: ChangelogOptions;
  /** Give up on an executive that sent nothing, not even a heartbeat, for this long. */
  idleTimeoutMs?: number;
  /** First pause before trying the next executive; doubles up to `backoffMaxMs`. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** PASSIVE checkpoint at most this often while entries flow. */
  checkpointIntervalMs?: number;
  fetch?: typeof fetch;
}

/** What the reflector reports on `/status`. */
export interface ReflectorStatus {
  ldbPath: string;
  /** Last ledger seq applied to the LDB. */
  appliedSeq: number;
  /** The cluster's last committed seq, from heartbeats and entries; undefined until heard. */
  clusterSeq: number | undefined;
  /** clusterSeq − appliedSeq: entries committed but not yet in the LDB. */
  lagEntries: number | undefined;
  /** Now − leader timestamp of the last applied entry (grows when idle: see heartbeat). */
  ledgerLatencyMs: number | undefined;
  /** The executive currently read, undefined while backing off. */
  executive: string | undefined;
  connected: boolean;
  /** Ms since the last line (entry or heartbeat) from an executive. */
  lastHeardAgoMs: number | undefined;
  entriesApplied: number;
  reconnects: number;
  lastError: string | undefined;
}

const DEFAULTS = {
  idleTimeoutMs: 15_000,
  backoffMinMs: 100,
  backoffMaxMs: 5_000,
  checkpointIntervalMs: 1_000,
};

/** Follows the ledger into one LDB. `run()` until `stop()`. */
export class Reflector {
  readonly #options: Required<Omit<ReflectorOptions, "changelog" | "families" | "fetch">>;
  readonly #writer: LdbWriter;
  readonly #checkpointer: WalCheckpointer;
  #checkpointerFailed = false;
  readonly #changelog: Changelog | undefined;
  readonly #fetch: typeof fetch | undefined;
  readonly #log = log("reflector");
  readonly #abort = new AbortController();
  #clusterSeq: number | undefined;
  #executive: string | undefined;
  #connected = false;
  #lastHeardMs: number | undefined;
  #entriesApplied = 0;
  #reconnects = 0;
  #lastError: string | undefined;
  #lastCheckpointMs = 0;
  #walDirty = false;
  #running: Promise<void> | undefined;
  #closed = false;
  #applyListeners = new Set<(seq: number) => void>();

  constructor(options: ReflectorOptions) {
    if (options.executives.length === 0) throw new RangeError("no executive URL given");
    this.#options = {
      ldbPath: options.ldbPath,
      executives: options.executives,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      backoffMinMs: options.backoffMinMs ?? DEFAULTS.backoffMinMs,
      backoffMaxMs: options.backoffMaxMs ?? DEFAULTS.backoffMaxMs,
      checkpointIntervalMs: options.checkpointIntervalMs ?? DEFAULTS.checkpointIntervalMs,
    };
    this.#fetch = options.fetch;
    this.#writer = LdbWriter.open(options.ldbPath, { families: options.families });
    try {
      this.#changelog = options.changelog
        ? Changelog.open(options.changelog, this.#writer.seq)
        : undefined;
    } catch (e) {
      this.#writer.close();
      throw e;
    }
    this.#checkpointer = new WalCheckpointer(
      options.ldbPath,
      (message) => {
        // The loop's own checkpoints (below) keep the WAL bounded meanwhile, on this thread.
        this.#checkpointerFailed = true;
        this.#log.warn("LDB checkpoints move back to the reflector's thread: {message}", {
          message,
        });
      },
      this.#options.checkpointIntervalMs,
    );
  }

  /** The last applied seq. */
  get appliedSeq(): number {
    return this.#writer.seq;
  }

  /** Calls `listener(seq)` after every committed batch; returns an unsubscribe function. */
  onApplied(listener: (seq: number) => void): () => void {
    this.#applyListeners.add(listener);
    return () => this.#applyListeners.delete(listener);
  }

  status(nowMs: number = Date.now()): ReflectorStatus {
    const applied = this.#writer.seq;
    const lastTs = this.#writer.lastUpdateMs;
    return {
      ldbPath: this.#options.ldbPath,
      appliedSeq: applied,
      clusterSeq: this.#clusterSeq,
      lagEntries: this.#clusterSeq === undefined
        ? undefined
        : Math.max(0, this.#clusterSeq - applied),
      ledgerLatencyMs: lastTs === undefined ? undefined : Math.max(0, nowMs - lastTs),
      executive: this.#executive,
      connected: this.#connected,
      lastHeardAgoMs: this.#lastHeardMs === undefined ? undefined : nowMs - this.#lastHeardMs,
      entriesApplied: this.#entriesApplied,
      reconnects: this.#reconnects,
      lastError: this.#lastError,
    };
  }

  /**
   * Follows the ledger until `stop()`. Rejects only on a failure that retrying cannot fix: the
   * executives no longer hold the ledger after our seq (410, `ledger_gone`).
   */
  run(): Promise<void> {
    this.#running ??= this.#loop().finally(() => this.#close());
    return this.#running;
  }

  /** Stops following and closes the LDB (and changelog); resolves when done. */
  async stop(): Promise<void> {
    this.#abort.abort(new Error("reflector stopped"));
    if (this.#running) await this.#running.catch(() => {});
    else this.#close();
  }

  async #loop(): Promise<void> {
    const urls = this.#options.executives;
    let index = 0;
    let backoffMs = this.#options.backoffMinMs;
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      const url = urls[index];
      let progressed = false;
      this.#executive = url;
      try {
        this.#log.info("Following the ledger from {url} after seq {seq}", {
          url,
          seq: this.#writer.seq,
        });
        const batches = readLedger({
          baseUrl: url,
          after: this.#writer.seq,
          signal,
          idleTimeoutMs: this.#options.idleTimeoutMs,
          fetch: this.#fetch,
        });
        for await (const batch of batches) {
          this.#connected = true;
          this.#lastHeardMs = Date.now();
          const before = this.#writer.seq;
          try {
            this.#handle(batch);
          } finally {
            if (this.#writer.seq > before) progressed = true;
          }
        }
        if (!signal.aborted) this.#lastError = `${url} ended the ledger stream`;
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof LedgerSourceError && e.code === "ledger_gone") {
          this.#lastError = e.message;
          this.#log.error("{message}", { message: e.message });
          throw e;
        }
        this.#lastError = `${url}: ${e instanceof Error ? e.message : String(e)}`;
        this.#log.warn("Ledger from {url} failed: {error}", { url, error: this.#lastError });
      }
      this.#connected = false;
      this.#executive = undefined;
      if (signal.aborted) break;
      this.#reconnects++;
      if (progressed) backoffMs = this.#options.backoffMinMs;
      // Jitter (half fixed, half random) keeps a fleet of reflectors from reconnecting in step.
      await sleep(backoffMs / 2 + Math.random() * backoffMs / 2, signal);
      backoffMs = Math.min(backoffMs * 2, this.#options.backoffMaxMs);
      index = (index + 1) % urls.length;
    }
  }

  /** Applies one batch. Throws (a gap, a failing entry) to fail over. */
  #handle(batch: LedgerBatch): void {
    if (batch.lastSeq !== undefined) {
      this.#clusterSeq = Math.max(this.#clusterSeq ?? 0, batch.lastSeq);
    }
    if (batch.entries.length === 0) {
      this.#checkpointIfIdle();
      return;
    }
    const before = this.#writer.seq;
    try {
      this.#apply(batch.entries);
    } finally {
      // Entries before a gap or a failing entry commit; account for them either way.
      const advanced = this.#writer.seq - before;
      if (advanced > 0) {
        this.#entriesApplied += advanced;
        this.#walDirty = true;
        for (const listener of this.#applyListeners) listener(this.#writer.seq);
      }
    }
    this.#checkpointPeriodically();
  }

  #apply(entries: LedgerEntry[]): void {
    const changelog = this.#changelog;
    try {
      this.#writer.applyBatch(entries, {
        beforeCommit: changelog ? (changes) => changelog.append(changes) : undefined,
      });
    } catch (e) {
      if (e instanceof LdbError && e.code === "ldb_apply_failed") {
        this.#log.error("{message}", { message: e.message });
      }
      throw e;
    }
  }

  /**
   * While entries flow, a worker copies the WAL into the file (and fsyncs both): a checkpoint on
   * this thread held up the next apply for 2–17 ms about once a second (measured at 1,000
   * writes/s), which was the tail of write → LDB latency. Once the worker has finished one, a
   * PASSIVE checkpoint here copies only what was written since, between two transactions, so the
   * WAL starts over (a checkpoint beside a busy writer never catches up with it).
   */
  #checkpointPeriodically(): void {
    if (!this.#checkpointerFailed) {
      this.#checkpointer.afterCommit(() => this.#writer.checkpoint("PASSIVE"));
      return;
    }
    const now = performance.now();
    if (now - this.#lastCheckpointMs < this.#options.checkpointIntervalMs) return;
    this.#lastCheckpointMs = now;
    this.#writer.checkpoint("PASSIVE");
  }

  #checkpointIfIdle(): void {
    if (!this.#walDirty) return;
    const result = this.#writer.checkpoint("TRUNCATE");
    this.#lastCheckpointMs = performance.now();
    if (result.busy === 0) this.#walDirty = false;
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#connected = false;
    this.#changelog?.close();
    this.#checkpointer.close();
    this.#writer.close();
  }
}
