/** Configuration of a Raft node, and the shapes the core hands to its driver. */

import { RaftError } from "./errors.ts";
import type { ProgressState } from "./progress.ts";
import type { Storage } from "./storage.ts";
import type { ConfState, Entry, HardState, Message, NodeId, Snapshot } from "./types.ts";

/** Settings of one node. Ticks are the driver's clock unit (e.g. 100 ms). */
export interface Config {
  id: NodeId;
  /** Ticks without hearing from a leader before campaigning; randomized in [n, 2n). */
  electionTicks: number;
  /** Ticks between leader heartbeats. Must be < electionTicks. */
  heartbeatTicks: number;
  /** Read-only to the core; the driver appends to it after each Ready. */
  storage: Storage;
  /** Last index the application already applied (restart). Defaults to the snapshot index. */
  applied?: number;
  /** Largest MsgApp payload (one entry always fits regardless). */
  maxSizePerMsgBytes: number;
  /** Largest number of unacknowledged MsgApp per follower in replicate state. */
  maxInflightMsgs: number;
  /** Largest total payload of unacknowledged MsgApp per follower; 0 = no byte limit. */
  maxInflightBytes?: number;
  /** Leader refuses proposals beyond this many uncommitted bytes. Default: no limit. */
  maxUncommittedEntriesBytes?: number;
  /** Largest committed-entries payload per Ready. Default 64 MiB (at least one entry). */
  maxCommittedSizePerReadyBytes?: number;
  /** Size of one MsgSnap chunk. Default 512 KiB. */
  snapshotChunkBytes?: number;
  /** Largest number of pending ReadIndex requests on a leader. Default 4096. */
  maxPendingReads?: number;
  /** Pre-Vote (thesis §9.6): a node campaigns only if it could win, so rejoining nodes do not disrupt. */
  preVote: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down. */
  checkQuorum: boolean;
  /**
   * "safe": ReadIndex confirmed by a heartbeat quorum. "lease": answered from the leader's lease
   * without a round trip; correct only if clocks drift less than the election timeout allows
   * (requires checkQuorum).
   */
  readOnly: "safe" | "lease";
  /** Seeded source of randomness in [0, 1), for election timeouts. */
  random: () => number;
}

export type Role = "follower" | "candidate" | "precandidate" | "leader";

/** Volatile state that the driver may want to observe; not persisted. */
export interface SoftState {
  leader: NodeId | null;
  role: Role;
}

/** The answer to a ReadIndex request: reads at `index` or later are linearizable once applied. */
export interface ReadState {
  index: number;
  context: string;
}

/**
 * Everything the driver must do, as one batch. See raft/DESIGN.md, "Ready contract":
 * send `messages` at once; persist `snapshot`, `entries` and `hardState`; then send
 * `messagesAfterPersist`; apply `snapshot` then `committedEntries`; then call advance(rd).
 */
export interface Ready {
  softState?: SoftState;
  /** Persist if present (term, vote, commit). */
  hardState?: HardState;
  /** Append to stable storage (may replace a conflicting suffix). */
  entries: Entry[];
  /** A snapshot from the leader: persist it, and restore the state machine from it. */
  snapshot?: Snapshot;
  /** Leader replication messages that may be sent BEFORE the Ready is persisted. */
  messages: Message[];
  /** Messages that may be sent only AFTER hardState, entries and snapshot are durable. */
  messagesAfterPersist: Message[];
  /** Committed entries to apply, in order, after persisting. */
  committedEntries: Entry[];
  readStates: ReadState[];
  /** True when hardState term/vote or entries changed: the write must be fsynced. */
  mustSync: boolean;
}

/** A member's replication progress, as seen by the leader. */
export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  learner: boolean;
  recentActive: boolean;
  inflight: number;
  pendingSnapshot: number;
}

export interface Status {
  id: NodeId;
  role: Role;
  term: number;
  vote: NodeId | null;
  leader: NodeId | null;
  commit: number;
  applied: number;
  lastIndex: number;
  conf: ConfState;
  /** Empty unless this node is the leader. */
  progress: Record<NodeId, ProgressStatus>;
  leadTransferee: NodeId | null;
}

/** Throws RaftError "InvalidConfig" naming the bad setting. */
export function validateConfig(c: Config): void {
  const bad = (why: string) => new RaftError("InvalidConfig", `Invalid raft config: ${why}`);
  if (typeof c.id !== "string" || c.id === "") throw bad("id must be a non-empty string");
  if (!(c.heartbeatTicks > 0)) throw bad(`heartbeatTicks ${c.heartbeatTicks} must be > 0`);
  if (!(c.electionTicks > c.heartbeatTicks)) {
    throw bad(`electionTicks ${c.electionTicks} must be > heartbeatTicks ${c.heartbeatTicks}`);
  }
  if (!(c.maxSizePerMsgBytes > 0)) throw bad("maxSizePerMsgBytes must be > 0");
  if (!(c.maxInflightMsgs > 0)) throw bad("maxInflightMsgs must be > 0");
  if (c.readOnly === "lease" && !c.checkQuorum) throw bad('readOnly "lease" requires checkQuorum');
  if (c.snapshotChunkBytes !== undefined && !(c.snapshotChunkBytes > 0)) {
    throw bad("snapshotChunkBytes must be > 0");
  }
  if (typeof c.random !== "function") throw bad("random must be a function");
}
