/** The application state machine the Raft node applies committed entries to. */

/** One committed entry as the state machine sees it. */
export interface StateMachineEntry {
  index: number;
  term: number;
  /**
   * "app": an application proposal, `data` is what was proposed. "internal": a no-op, a
   * membership change or a runtime record; the state machine only records its index as applied.
   */
  kind: "app" | "internal";
  data: Uint8Array;
  /**
   * What the proposer passed to `propose` beside `data`, given back only on the member that
   * proposed the entry, in the same process, while the proposal is still pending. A state
   * machine may use it to skip decoding `data` again, never as an input that differs from it:
   * every other replica has only `data`.
   */
  local?: unknown;
}

/**
 * An application state machine. It persists its applied index atomically with its data
 * (e.g. in the same SQLite transaction), so that after a restart the node applies nothing twice:
 * entries at or below `appliedIndex()` are not passed again.
 */
export interface StateMachine {
  /**
   * Applies entries in index order and returns one result per entry (the result of an
   * internal entry is ignored). Must be deterministic: a pure function of entries and state.
   */
  apply(entries: readonly StateMachineEntry[]): unknown[] | Promise<unknown[]>;
  /** The full state at `appliedIndex()`, for a snapshot. */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  /**
   * Optional: the full state and the applied index it is at, taken without holding up
   * `apply` (which goes on meanwhile, e.g. while another thread copies a database file). When
   * present the node snapshots this way, off its loop.
   */
  snapshotConcurrently?(): Promise<{ index: number; data: Uint8Array }>;
  /**
   * Optional, preferred over the two above: writes the full state to the file `path` (which does
   * not exist yet) without holding up `apply`, and says which applied index the copy holds. The
   * node then builds its snapshot file from that file: a large state never enters memory.
   */
  snapshotToFile?(path: string): Promise<{ index: number }>;
  /**
   * Optional: on the leader, applies ahead its own entry at `appliedIndex()` + 1 before it
   * commits, while the leader waits for a quorum's fsyncs. The speculation must be invisible
   * (no read sees it, nothing of it becomes durable) until `apply` is given the same entry (same
   * index, term and `local`) first, which keeps its work and result; any other `apply`, or
   * `abandonSpeculation`, undoes it first. The node offers only a lone pending proposal.
   */
  speculate?(entry: StateMachineEntry): void;
  /** Optional, with `speculate`: undoes a speculation now (this member lost leadership). */
  abandonSpeculation?(): void;
  /** Replaces the whole state with a snapshot's, taken at `index` (the new applied index). */
  restore(data: Uint8Array, index: number): void | Promise<void>;
  /** Index of the last entry applied (durably). 0 for a new state machine. */
  appliedIndex(): number;
}
