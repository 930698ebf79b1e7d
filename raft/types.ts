/**
 * The vocabulary of the Raft core: log entries, hard state, snapshots and messages.
 *
 * These shapes are the contract between the pure core (raft/) and its driver (storage,
 * transport, runtime outside raft/). The transport must round-trip every field of `Message`,
 * including `Uint8Array` payloads and fields added later, so it encodes generically.
 */

/** A member's stable identity, e.g. "e1". */
export type NodeId = string;

export type EntryType = "normal" | "conf";

/** One log entry. `data` is opaque to the core for "normal"; for "conf" it encodes a ConfChange. */
export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/**
 * What must be durable before any message that depends on it is sent
 * (see raft/DESIGN.md, "Persistence contract").
 */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

/** The membership of the cluster. `votersOutgoing` is non-empty only in a joint configuration. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  votersOutgoing: NodeId[];
  learnersNext: NodeId[];
  autoLeave: boolean;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

/** A snapshot of the application state machine at `meta.index`. `data` is opaque to the core. */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export type MessageType =
  | "MsgApp"
  | "MsgAppResp"
  | "MsgVote"
  | "MsgVoteResp"
  | "MsgPreVote"
  | "MsgPreVoteResp"
  | "MsgHeartbeat"
  | "MsgHeartbeatResp"
  | "MsgSnap"
  | "MsgSnapResp"
  | "MsgTimeoutNow"
  | "MsgReadIndex"
  | "MsgReadIndexResp"
  | "MsgTransferLeader";

/** A message between members. Optional fields are used by some types only. */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** MsgApp: term of the entry before `entries`; votes: term of the candidate's last entry. */
  logTerm?: number;
  /** MsgApp: index of the entry before `entries`; votes: candidate's last index; responses: match/hint index. */
  index?: number;
  entries?: Entry[];
  commit?: number;
  reject?: boolean;
  /** On a rejected MsgAppResp: the follower's hint for fast backtracking. */
  rejectHint?: number;
  /** On a rejected MsgAppResp: the term at rejectHint in the follower's log (conflict term). */
  logTermHint?: number;
  /** MsgSnap: the snapshot being sent, chunked: `snapshotData` is the chunk at `snapshotOffset`. */
  snapshot?: SnapshotMeta;
  snapshotOffset?: number;
  snapshotData?: Uint8Array;
  snapshotDone?: boolean;
  /** ReadIndex request context, echoed back; campaign kind for transfers. */
  context?: string;
}
