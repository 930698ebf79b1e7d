/**
 * The heartbeat writer: one row, `ctlstore.heartbeats["heartbeat"]`, rewritten every interval
 * with the current time in unix nanoseconds. Every LDB then holds a row whose value says how
 * stale that LDB is (now − value), measurable on each host without talking to the executives.
 *
 * Set-up (writer `heartbeat`, family `ctlstore`, table `heartbeats (name string key, value
 * integer)`) is idempotent: 409 "already exists" counts as done. Failures are logged and the loop
 * goes on; a 404 (family or table dropped meanwhile) or a 401 makes it redo the set-up.
 */
import {
  ExecutiveClient,
  type ExecutiveClientOptions,
  ExecutiveHttpError,
} from "../client/executive_client.ts";
import { log } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";

/** Names ctlstore uses, so existing staleness dashboards keep working. */
export const HEARTBEAT_WRITER = "heartbeat";
export const HEARTBEAT_FAMILY = "ctlstore";
export const HEARTBEAT_TABLE = "heartbeats";
export const HEARTBEAT_ROW = "heartbeat";
/** Shortest interval accepted: every beat is a ledger entry on every host. */
export const HEARTBEAT_INTERVAL_MS_MIN = 100;

/** Configuration of the heartbeat. */
export interface HeartbeatOptions {
  /** Executive base URLs, tried in turn. */
  executives: string[];
  adminToken: string;
  /** Secret of the `heartbeat` writer (registered with it). */
  writerSecret: string;
  /** Time between beats (default 15 s). */
  intervalMs?: number;
  /** Tries per request across the executives (default 3). */
  attempts?: number;
  /** Per-try timeout (default 5 s: a beat must not pile up behind a hung request). */
  timeoutMs?: number;
  /** Current time in unix nanoseconds (tests). */
  nowNanos?: () => bigint;
  fetch?: typeof fetch;
}

/** Counters for status and tests. */
export interface HeartbeatStats {
  beats: number;
  failures: number;
  /** Ledger seq of the last successful beat. */
  lastSeq?: number;
  lastError?: string;
}

/** Unix time in nanoseconds, from the high-resolution clock anchored at the time origin. */
export function unixNanos(): bigint {
  const micros = Math.round((performance.timeOrigin + performance.now()) * 1000);
  return BigInt(micros) * 1000n;
}

/** Writes the heartbeat row through the executives. */
export class Heartbeat {
  readonly #client: ExecutiveClient;
  readonly #intervalMs: number;
  readonly #writerSecret: string;
  readonly #nowNanos: () => bigint;
  readonly #log = log("heartbeat");
  readonly #stopped = new AbortController();
  #ready = false;
  readonly stats: HeartbeatStats = { beats: 0, failures: 0 };

  constructor(options: HeartbeatOptions) {
    const intervalMs = options.intervalMs ?? 15_000;
    if (!(intervalMs >= HEARTBEAT_INTERVAL_MS_MIN)) {
      throw new RangeError(
        `heartbeat interval must be at least ${HEARTBEAT_INTERVAL_MS_MIN} ms, got ${intervalMs}`,
      );
    }
    if (options.executives.length === 0) throw new RangeError("heartbeat needs an executive URL");
    const clientOptions: ExecutiveClientOptions = {
      urls: options.executives,
      adminToken: options.adminToken,
      writer: { name: HEARTBEAT_WRITER, secret: options.writerSecret },
      attempts: options.attempts ?? 3,
      timeoutMs: options.timeoutMs ?? 5_000,
      fetch: options.fetch,
    };
    this.#client = new ExecutiveClient(clientOptions);
    this.#intervalMs = intervalMs;
    this.#writerSecret = options.writerSecret;
    this.#nowNanos = options.nowNanos ?? unixNanos;
  }

  /** Registers the writer and creates the family and table when missing. */
  async setup(): Promise<void> {
    await this.#idempotent(
      "register writer",
      () => this.#client.registerWriter(HEARTBEAT_WRITER, this.#writerSecret),
    );
    await this.#idempotent("create family", () => this.#client.createFamily(HEARTBEAT_FAMILY));
    await this.#idempotent("create table", () =>
      this.#client.createTable(
        HEARTBEAT_FAMILY,
        HEARTBEAT_TABLE,
        [["name", "string"], ["value", "integer"]],
        ["name"],
      ));
    this.#ready = true;
  }

  async #idempotent(action: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (e) {
      if (e instanceof ExecutiveHttpError && e.status === 409) {
        if (e.code === "writer_exists") {
          // Registered before with another secret: beats will be refused with 401 until fixed.
          this.#log.warn("Heartbeat writer exists with a different secret: {message}", {
            message: e.message,
          });
        } else {
          this.#log.debug("Heartbeat set-up: {action}: already done", { action });
        }
        return;
      }
      throw e;
    }
  }

  /** Writes one beat (set-up first when needed); returns the ledger seq. */
  async beat(): Promise<number> {
    if (!this.#ready) await this.setup();
    const value = this.#nowNanos().toString();
    try {
      const { seq } = await this.#client.mutate(HEARTBEAT_FAMILY, [
        { table: HEARTBEAT_TABLE, delete: false, values: { name: HEARTBEAT_ROW, value } },
      ]);
      return seq;
    } catch (e) {
      if (e instanceof ExecutiveHttpError && (e.status === 404 || e.status === 401)) {
        this.#ready = false; // Dropped or re-keyed meanwhile: set up again next time.
      }
      throw e;
    }
  }

  /** Beats until `stop()`: the first at once, then one per interval. Never throws. */
  async run(): Promise<void> {
    const signal = this.#stopped.signal;
    while (!signal.aborted) {
      const started = performance.now();
      try {
        const seq = await this.beat();
        this.stats.beats++;
        this.stats.lastSeq = seq;
        this.#log.debug("Heartbeat written at seq {seq}", { seq });
      } catch (e) {
        this.stats.failures++;
        this.stats.lastError = (e as Error).message ?? String(e);
        this.#log.error("Heartbeat failed: {error}", { error: this.stats.lastError });
      }
      const waitMs = Math.max(0, this.#intervalMs - (performance.now() - started));
      await sleep(waitMs, signal);
    }
  }

  /** Ends `run()` after the beat in progress, if any. */
  stop(): void {
    this.#stopped.abort();
  }
}
