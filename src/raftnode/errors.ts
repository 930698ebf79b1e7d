/** Expected failures of the Raft node, with stable codes the HTTP layer maps to statuses. */

import type { NodeId } from "../../raft/types.ts";

/** Stable codes of RaftNodeError. */
export type RaftNodeErrorCode =
  | "NOT_LEADER"
  | "PROPOSAL_DROPPED"
  | "TIMEOUT"
  | "STOPPED"
  | "OVERLOADED"
  | "TOO_LARGE"
  | "BAD_MEMBERSHIP"
  | "BAD_START";

/** An expected failure of a node operation. */
export class RaftNodeError extends Error {
  constructor(readonly code: RaftNodeErrorCode, message: string) {
    super(message);
    this.name = "RaftNodeError";
  }
}

/** This member is not the leader; `leaderId` is the leader it knows of, or null. */
export class NotLeaderError extends RaftNodeError {
  constructor(readonly leaderId: NodeId | null) {
    super("NOT_LEADER", `Not the leader; the leader is ${leaderId ?? "unknown"}`);
    this.name = "NotLeaderError";
  }
}
