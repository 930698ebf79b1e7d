/**
 * Prometheus metrics of an executive: Raft term, commit and applied index, leadership, the
 * ledger seq, proposals by outcome, and where a write's time goes on this member: durable log
 * appends (one fsync each), applying committed batches to the SoR, and snapshot copies.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { RaftNodeStatus } from "../raftnode/raft_node.ts";
import type { StateMachine } from "../raftnode/state_machine.ts";
import type { LogStore } from "../raftnode/storage/types.ts";

/** What the metrics read on each scrape. */
export interface ExecutiveMetricsSource {
  raftStatus(): RaftNodeStatus;
  lastSeq(): number;
  /** Leader speculations (`SorStateMachine.speculate`) kept and undone so far. */
  speculations(): { kept: number; undone: number };
}

/** The executive's registry and the hooks that feed it. */
export class ExecutiveMetrics {
  readonly registry = new Registry();
  readonly #proposals: Counter<"outcome">;
  readonly #appendSeconds: Histogram;
  readonly #applySeconds: Histogram;
  readonly #appliedEntries: Counter;
  readonly #snapshotSeconds: Histogram;
  #source: ExecutiveMetricsSource | null = null;

  constructor() {
    const source = () => this.#source;
    for (
      const [name, help, read] of [
        ["ctl_raft_term", "current Raft term", (s) => s.raftStatus().term],
        [
          "ctl_raft_commit_index",
          "highest log index known committed",
          (s) => s.raftStatus().commitIndex,
        ],
        [
          "ctl_raft_applied_index",
          "highest log index applied to the SoR",
          (s) => s.raftStatus().appliedIndex,
        ],
        [
          "ctl_raft_snapshot_index",
          "index of the latest snapshot",
          (s) => s.raftStatus().snapshotIndex,
        ],
        [
          "ctl_raft_snapshot_in_memory",
          "1 while the latest snapshot's data is held in memory for a follower (else on disk only)",
          (s) => s.raftStatus().snapshotInMemory ? 1 : 0,
        ],
        ["ctl_raft_is_leader", "1 on the leader", (s) => s.raftStatus().role === "leader" ? 1 : 0],
        ["ctl_raft_members", "members in the configuration", (s) => s.raftStatus().members.length],
        ["ctl_ledger_last_seq", "last ledger seq applied here", (s) => s.lastSeq()],
      ] as [string, string, (s: ExecutiveMetricsSource) => number][]
    ) {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        // Read on scrape, so the figures are current and nothing runs between scrapes.
        collect() {
          const s = source();
          if (s) this.set(read(s));
        },
      });
    }
    new Counter({
      name: "ctl_sor_speculations_total",
      help: "the leader's own lone writes applied ahead of their commit, by outcome: kept as " +
        "the apply, or undone (a read or COMMIT came first, or leadership was lost)",
      labelNames: ["outcome"],
      registers: [this.registry],
      collect() {
        const s = source();
        if (!s) return;
        const counts = s.speculations();
        this.reset();
        this.inc({ outcome: "kept" }, counts.kept);
        this.inc({ outcome: "undone" }, counts.undone);
      },
    });
    this.#proposals = new Counter({
      name: "ctl_proposals_total",
      help: "commands proposed through Raft, by outcome",
      labelNames: ["outcome"],
      registers: [this.registry],
    });
    this.#appendSeconds = new Histogram({
      name: "ctl_raft_log_append_seconds",
      help: "latency of durable Raft log appends (write + fsync)",
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
    this.#applySeconds = new Histogram({
      name: "ctl_sor_apply_seconds",
      help: "time to apply one batch of committed entries to the SoR (one SQLite transaction)",
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
    this.#appliedEntries = new Counter({
      name: "ctl_sor_applied_entries_total",
      help: "committed entries applied to the SoR",
      registers: [this.registry],
    });
    this.#snapshotSeconds = new Histogram({
      name: "ctl_sor_snapshot_seconds",
      help: "time to copy the SoR for a Raft snapshot (off the Raft loop, on a worker thread)",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
  }

  /** Wraps the node's state machine so applied batches and snapshot copies are timed. */
  wrapStateMachine = (sm: StateMachine): StateMachine => {
    const apply = this.#applySeconds;
    const entries = this.#appliedEntries;
    const snapshot = this.#snapshotSeconds;
    const concurrently = sm.snapshotConcurrently?.bind(sm);
    const toFile = sm.snapshotToFile?.bind(sm);
    const speculate = sm.speculate?.bind(sm);
    const abandon = sm.abandonSpeculation?.bind(sm);
    const timed = async <T>(copy: () => Promise<T>): Promise<T> => {
      const end = snapshot.startTimer();
      try {
        return await copy();
      } finally {
        end();
      }
    };
    return {
      apply: (batch) => {
        const end = apply.startTimer();
        const done = () => {
          end();
          entries.inc(batch.length);
        };
        const result = sm.apply(batch);
        if (result instanceof Promise) return result.finally(done);
        done();
        return result;
      },
      snapshot: () => sm.snapshot(),
      ...(concurrently ? { snapshotConcurrently: () => timed(concurrently) } : {}),
      ...(toFile ? { snapshotToFile: (path: string) => timed(() => toFile(path)) } : {}),
      ...(speculate ? { speculate } : {}),
      ...(abandon ? { abandonSpeculation: abandon } : {}),
      restore: (data, index) => sm.restore(data, index),
      appliedIndex: () => sm.appliedIndex(),
    };
  };

  /** Where gauges read from (set once the node runs). */
  attach(source: ExecutiveMetricsSource): void {
    this.#source = source;
  }

  /** Counts a proposal's outcome: "ok", "rejected" (a 4xx apply result) or "failed". */
  proposal(outcome: "ok" | "rejected" | "failed"): void {
    this.#proposals.inc({ outcome });
  }

  /** Wraps the node's log store so every append is timed. */
  wrapLogStore = (log: LogStore): LogStore => {
    const histogram = this.#appendSeconds;
    const appendWaiting = log.appendWaiting?.bind(log);
    return {
      get kind() {
        return log.kind;
      },
      load: () => log.load(),
      append: async (entries, hardState) => {
        const end = histogram.startTimer();
        try {
          await log.append(entries, hardState);
        } finally {
          end();
        }
      },
      ...(appendWaiting
        ? {
          appendWaiting: (entries, hardState, waitMs) => {
            const end = histogram.startTimer();
            let appended: true | Promise<void>;
            try {
              appended = appendWaiting(entries, hardState, waitMs);
            } catch (e) {
              end();
              throw e;
            }
            if (appended === true) end();
            else appended.then(() => end(), () => end());
            return appended;
          },
        }
        : {}),
      saveSnapshot: (s) => log.saveSnapshot(s),
      saveSnapshotFromFile: (meta, head, path) => log.saveSnapshotFromFile(meta, head, path),
      installSnapshot: (s) => log.installSnapshot(s),
      loadSnapshotData: (i) => log.loadSnapshotData(i),
      compact: (i) => log.compact(i),
      close: () => log.close(),
    };
  };

  async render(): Promise<Response> {
    return new Response(await this.registry.metrics(), {
      headers: { "content-type": this.registry.contentType },
    });
  }
}
