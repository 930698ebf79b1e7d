/**
 * Typed errors of the Raft core. Expected failures carry a stable `code`; broken invariants
 * throw `RaftInvariantError`, which callers must not catch: it means a bug or corrupted storage.
 */

/** Stable codes of expected failures. */
export type RaftErrorCode =
  | "ProposalDropped"
  | "NotLeader"
  | "LeaderTransferring"
  | "UncommittedLimit"
  | "ConfChangePending"
  | "ConfChangeInvalid"
  | "ReadIndexDropped"
  | "NoLeader"
  | "Compacted"
  | "Unavailable"
  | "SnapshotOutOfDate"
  | "SnapshotUnavailable"
  | "InvalidConfig";

/** An expected failure with a stable code, e.g. a proposal on a follower. */
export class RaftError extends Error {
  constructor(readonly code: RaftErrorCode, message: string) {
    super(message);
    this.name = "RaftError";
  }
}

/** A proposal was not appended. `code` says why: NotLeader, LeaderTransferring, ... */
export class ProposalDropped extends RaftError {
  constructor(
    readonly reason:
      | "NotLeader"
      | "LeaderTransferring"
      | "UncommittedLimit"
      | "ConfChangePending"
      | "ConfChangeInvalid",
    message: string,
  ) {
    super("ProposalDropped", message);
    this.name = "ProposalDropped";
  }
}

/** The requested index is below the first index of the log (it was compacted). */
export class CompactedError extends RaftError {
  constructor(message: string) {
    super("Compacted", message);
    this.name = "CompactedError";
  }
}

/** The requested index is above the last index of the log. */
export class UnavailableError extends RaftError {
  constructor(message: string) {
    super("Unavailable", message);
    this.name = "UnavailableError";
  }
}

/** A broken invariant: a bug in the core or a driver that broke the Ready contract. */
export class RaftInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RaftInvariantError";
  }
}

/** Assertions stay on in production: a broken invariant must stop the node, not corrupt data. */
export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new RaftInvariantError(typeof message === "string" ? message : message());
  }
}
