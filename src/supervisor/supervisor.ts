/**
 * The supervisor loop: every interval (first at start), snapshot the LDB online and publish it,
 * unless the LDB has not moved since the last publication. Failures are logged and retried at the
 * next interval; the loop itself only ends on `stop()`.
 */
import { dirname, join } from "node:path";
import { log } from "../util/log.ts";
import { SnapshotError } from "./errors.ts";
import { removeQuietly } from "../util/durable_file.ts";
import { type PublishResult, publishSnapshot } from "./publish.ts";
import { currentLdbSeq, takeLdbSnapshot } from "./snapshot.ts";
import type { SnapshotTarget } from "./target.ts";
import { sleep } from "../util/sleep.ts";

/** Shortest interval accepted: a snapshot of a large LDB takes seconds. */
export const INTERVAL_MS_MIN = 1_000;

/** Configuration of a supervisor. */
export interface SupervisorOptions {
  ldbPath: string;
  target: SnapshotTarget;
  /** Snapshots kept at the target (default 3). */
  keep?: number;
  /** Time between the starts of two cycles (default 5 minutes). */
  intervalMs?: number;
  /** Where the uncompressed copy is written before publication (default: the LDB's folder). */
  workDir?: string;
  /** Told the outcome of every cycle (metrics). */
  onCycle?: (result: CycleResult) => void;
}

/** The outcome of one cycle. */
export type CycleResult =
  | {
    kind: "published";
    seq: number;
    file: string;
    sizeBytes: number;
    copyMs: number;
    totalMs: number;
  }
  | { kind: "skipped"; seq: number; reason: "empty" | "unchanged" }
  | { kind: "failed"; code: string; message: string };

/** Takes and publishes snapshots of one LDB to one target. */
export class Supervisor {
  readonly #options: Required<Omit<SupervisorOptions, "workDir" | "onCycle">> & {
    workDir: string;
  };
  readonly #onCycle: ((result: CycleResult) => void) | undefined;
  readonly #log = log("supervisor");
  readonly #stopped = new AbortController();
  #last: CycleResult | undefined;

  constructor(options: SupervisorOptions) {
    const intervalMs = options.intervalMs ?? 5 * 60_000;
    if (!(intervalMs >= INTERVAL_MS_MIN)) {
      throw new RangeError(`interval must be at least ${INTERVAL_MS_MIN} ms, got ${intervalMs}`);
    }
    this.#options = {
      ldbPath: options.ldbPath,
      target: options.target,
      keep: options.keep ?? 3,
      intervalMs,
      workDir: options.workDir ?? dirname(options.ldbPath),
    };
    this.#onCycle = options.onCycle;
  }

  /** The result of the last finished cycle. */
  get lastResult(): CycleResult | undefined {
    return this.#last;
  }

  /**
   * One cycle: snapshot and publish when the LDB moved past the published seq.
   * Expected failures come back as `{kind: "failed"}`; only bugs throw.
   */
  async snapshotOnce(): Promise<CycleResult> {
    const started = performance.now();
    const { ldbPath, target } = this.#options;
    const copyPath = join(this.#options.workDir, `.ctl-snapshot-${crypto.randomUUID()}.db`);
    try {
      const liveSeq = await currentLdbSeq(ldbPath);
      if (liveSeq === 0) return this.#done({ kind: "skipped", seq: 0, reason: "empty" });
      const published = await target.readManifest();
      if (published && published.seq === liveSeq) {
        return this.#done({ kind: "skipped", seq: liveSeq, reason: "unchanged" });
      }
      // A live seq below the published one is refused by publishSnapshot (snapshot_stale).
      const snapshot = await takeLdbSnapshot(ldbPath, copyPath);
      const result: PublishResult = await publishSnapshot(snapshot, target, {
        keep: this.#options.keep,
      });
      if (!result.published) {
        return this.#done({ kind: "skipped", seq: result.publishedSeq, reason: "unchanged" });
      }
      return this.#done({
        kind: "published",
        seq: result.entry.seq,
        file: result.entry.file,
        sizeBytes: result.entry.sizeBytes,
        copyMs: Math.round(snapshot.durationMs),
        totalMs: Math.round(performance.now() - started),
      });
    } catch (e) {
      if (!(e instanceof SnapshotError)) throw e;
      return this.#done({ kind: "failed", code: e.code, message: e.message });
    } finally {
      await removeQuietly(copyPath).catch(() => {});
    }
  }

  #done(result: CycleResult): CycleResult {
    this.#last = result;
    this.#onCycle?.(result);
    const target = this.#options.target.url;
    if (result.kind === "published") {
      this.#log.info(
        "Published snapshot seq {seq} to {target} as {file}: {sizeBytes} bytes gzipped, copy " +
          "{copyMs} ms, total {totalMs} ms",
        { ...result, target },
      );
    } else if (result.kind === "skipped") {
      this.#log.info("No snapshot: LDB is {reason} (seq {seq})", { ...result });
    } else if (result.code === "ldb_unavailable") {
      // Expected at start, before the reflector has created the LDB.
      this.#log.warn("No snapshot ({code}): {message}", { ...result });
    } else {
      this.#log.error("Snapshot failed ({code}): {message}", { ...result });
    }
    return result;
  }

  /** Runs cycles until `stop()`: the first at once, then one per interval. */
  async run(): Promise<void> {
    const signal = this.#stopped.signal;
    while (!signal.aborted) {
      const started = performance.now();
      try {
        await this.snapshotOnce();
      } catch (e) {
        // A bug in one cycle must not end snapshotting for good; it is logged loudly.
        this.#log.fatal("Snapshot cycle crashed: {error}", { error: e });
      }
      const waitMs = Math.max(0, this.#options.intervalMs - (performance.now() - started));
      await sleep(waitMs, signal);
    }
  }

  /** Ends `run()` after the cycle in progress, if any. */
  stop(): void {
    this.#stopped.abort();
  }
}
