/**
 * What the runtime needs from the Raft core, in one narrow interface. `core_adapter.ts`
 * implements it over `raft/mod.ts` (RawNode + MemoryStorage); keeping the runtime on this port
 * confines changes of the core's API to the adapter.
 */

import type { ConfState, Entry, HardState, Message, NodeId, Snapshot } from "../../raft/types.ts";

/** A member's role. */
export type Role = "follower" | "candidate" | "precandidate" | "leader";

/** A membership change request. */
export type ConfChangeRequest =
  | { type: "addLearner"; id: NodeId }
  | { type: "addVoter"; id: NodeId }
  | { type: "remove"; id: NodeId };

/** What to persist, send and apply, as one batch. */
export interface CoreReady {
  /** Set when role or leader changed. */
  softState: { role: Role; leader: NodeId | null } | null;
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
  committedEntries: Entry[];
  /** May be sent before persisting (a leader's appends, thesis §10.2.1). */
  messages: Message[];
  /** May be sent only once the hard state, entries and snapshot are durable. */
  messagesAfterPersist: Message[];
  readStates: { index: number; context: string }[];
  /** False when only the commit index changed: the write need not be fsynced. */
  mustSync: boolean;
}

/** Progress of one member as the leader sees it. */
export interface MemberProgress {
  id: NodeId;
  voter: boolean;
  /** Highest index known replicated on the member; 0 when not leader. */
  matchIndex: number;
  /** The leader is sending this member a snapshot. */
  sendingSnapshot: boolean;
}

/** A snapshot of the core's state. */
export interface CoreStatus {
  id: NodeId;
  role: Role;
  term: number;
  leader: NodeId | null;
  commitIndex: number;
  members: MemberProgress[];
}

/** The Raft core as the runtime uses it. */
export interface CorePort {
  tick(): void;
  step(message: Message): void;
  /** Returns the entry's index. Throws the core's ProposalDropped when not accepted. */
  propose(data: Uint8Array): number;
  proposeConfChange(change: ConfChangeRequest): void;
  /** Applies a committed conf entry to the core's configuration; returns the new membership. */
  applyConfChange(entry: Entry): ConfState;
  readIndex(context: string): void;
  transferLeader(to: NodeId): void;
  reportUnreachable(id: NodeId): void;
  /** The stream from `id` closed: if it is the leader, campaign early (see raft/raw_node.ts). */
  reportPeerDisconnected(id: NodeId): void;
  reportSnapshot(id: NodeId, ok: boolean): void;
  hasReady(): boolean;
  ready(): CoreReady;
  advance(ready: CoreReady): void;
  status(): CoreStatus;
  /** The membership in force (as last applied). */
  confState(): ConfState;
  /** Storage side: entries and hard state now durable; a snapshot now installed. */
  storageAppend(entries: Entry[]): void;
  storageSetHardState(hardState: HardState): void;
  storageApplySnapshot(snapshot: Snapshot): void;
  /** Records a snapshot at `index` (applied) and returns it; null data: it is on disk only. */
  storageCreateSnapshot(index: number, conf: ConfState, data: Uint8Array | null): Snapshot;
  /** The term of the entry at `index` in the core's storage. */
  storageTerm(index: number): number;
  /** Drops entries before `index` from the core's storage. */
  storageCompact(index: number): void;
  /** Index of the first entry the core's storage still holds. */
  storageFirstIndex(): number;
  /** Index of the core's latest snapshot (its data may be on disk only). */
  storageSnapshotIndex(): number;
  /** Whether the latest snapshot's data is in the core's memory. */
  storageSnapshotResident(): boolean;
  /** Drops the latest snapshot's data from the core's memory (it is on disk). */
  storageReleaseSnapshotData(): void;
  /** The index of a released snapshot the core asked for (to send it), or null. */
  storageWantedSnapshot(): number | null;
  /** Hands back a released snapshot's data; false if that snapshot is no longer the latest. */
  storageRestoreSnapshotData(index: number, data: Uint8Array): boolean;
}

/** What a core is created with. */
export interface CoreCreation {
  core: CorePort;
  /**
   * For a brand-new member: the initial snapshot and hard state that bootstrapping wrote into
   * the core's storage, for the runtime to persist before anything else.
   */
  bootstrap: { snapshot: Snapshot; hardState: HardState } | null;
}

/** How a core is created for one member. */
export interface CoreOptions {
  id: NodeId;
  electionTicks: number;
  heartbeatTicks: number;
  /** Seed of the core's election jitter. */
  seed: number;
  /** Last applied index known to the runtime (committed entries after it are delivered). */
  applied: number;
  /** Members of a brand-new cluster (bootstrap), or null when restarting or joining. */
  bootstrapVoters: NodeId[] | null;
  /** Durable state loaded from disk. */
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
}
