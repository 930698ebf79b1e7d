/**
 * RawNode: the driver's handle on the core. Feed it ticks, messages and requests; drain a Ready,
 * do what it says (raft/DESIGN.md, "Ready contract"), then call advance(ready).
 */

import type { ConfChange } from "./confchange.ts";
import type { Config, Ready, SoftState, Status } from "./config.ts";
import { invariant } from "./errors.ts";
import { Raft } from "./raft.ts";
import type { ConfState, HardState, Message, NodeId, Snapshot } from "./types.ts";

/** What bootstrap needs from a storage: MemoryStorage, or the driver's durable log. */
export interface BootstrapTarget {
  lastIndex(): number;
  applySnapshot(snap: Snapshot): void;
  setHardState(hs: HardState): void;
}

/** Messages a leader may send before its Ready is durable (see the persistence contract). */
const sendableBeforePersist: ReadonlySet<string> = new Set(["MsgApp", "MsgHeartbeat", "MsgSnap"]);

/**
 * Whether `m` may be sent before the Ready that carries it is durable: only a leader's
 * replication messages (MsgApp, MsgHeartbeat, MsgSnap), and only for a term already durable.
 */
export function mayPrecedePersistence(m: Message, durableTerm: number): boolean {
  return sendableBeforePersist.has(m.type) && m.term <= durableTerm;
}

export class RawNode {
  readonly raft: Raft;
  #prevSoftState: SoftState;
  /** The hard state the driver last reported durable (through advance). */
  #prevHardState: HardState;
  #outstanding: Ready | undefined;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.#prevSoftState = this.#softState();
    this.#prevHardState = config.storage.initialState().hardState;
  }

  /**
   * Initialises the storage of a brand-new cluster member with `voters` as the first
   * configuration: a snapshot at index 1, term 1, with empty application data. Every founding
   * member must be bootstrapped with the same voters; a node joining later starts empty instead.
   */
  static bootstrap(storage: BootstrapTarget, voters: NodeId[]): void {
    invariant(storage.lastIndex() === 0, "bootstrap: storage is not empty");
    invariant(voters.length > 0, "bootstrap: no voters");
    storage.applySnapshot({
      meta: {
        index: 1,
        term: 1,
        conf: {
          voters: [...voters].sort(),
          learners: [],
          votersOutgoing: [],
          learnersNext: [],
          autoLeave: false,
        },
      },
      data: new Uint8Array(),
    });
    storage.setHardState({ term: 1, vote: null, commit: 1 });
  }

  /** Advances the logical clock by one tick (elections, heartbeats, CheckQuorum). */
  tick(): void {
    this.raft.tick();
  }

  /** Handles a message from a peer. */
  step(msg: Message): void {
    this.raft.step(msg);
  }

  /** Proposes application data; returns its log index. Throws ProposalDropped unless leader. */
  propose(data: Uint8Array): number {
    return this.raft.propose(data);
  }

  /** Proposes many entries as one batch; returns the last index. Throws ProposalDropped. */
  proposeBatch(datas: Uint8Array[]): number {
    return this.raft.proposeBatch(datas);
  }

  /** Proposes a membership change; returns its log index. Throws ProposalDropped. */
  proposeConfChange(cc: ConfChange): number {
    return this.raft.proposeConfChange(cc);
  }

  /** Asks the leader to hand leadership to `to` (works from any member that knows the leader). */
  transferLeader(to: NodeId): void {
    this.raft.transferLeader(to);
  }

  /**
   * Requests a linearizable read point; the answer comes in a later Ready's readStates with the
   * same context. Contexts must be unique across the cluster (prefix them with the node id). A
   * request forwarded to a leader that loses leadership is never answered: time out and retry.
   * Throws RaftError "ReadIndexDropped" when no leader is known or too many reads are pending.
   */
  readIndex(context: string): void {
    this.raft.readIndex(context);
  }

  /** Starts an election now (if this node is a voter). */
  campaign(): void {
    this.raft.hup(this.raft.preVote ? "preElection" : "election");
  }

  /** Applies a committed "conf" entry's change; returns the configuration now in force. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** The transport could not reach `id`: stop pipelining to it. */
  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  /**
   * The transport's connection from `id` closed: if `id` is this follower's leader, campaign
   * after only the randomised part of the election timeout (see `Raft.reportPeerDisconnected`).
   */
  reportPeerDisconnected(id: NodeId): void {
    this.raft.reportPeerDisconnected(id);
  }

  /** For snapshots delivered out of band: whether `id` installed it. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  status(): Status {
    return this.raft.status();
  }

  #softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role };
  }

  #hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  /** True when ready() would return something to do; false while a Ready awaits advance(). */
  hasReady(): boolean {
    if (this.#outstanding !== undefined) return false;
    this.raft.flush();
    const r = this.raft;
    const ss = this.#softState();
    if (ss.leader !== this.#prevSoftState.leader || ss.role !== this.#prevSoftState.role) {
      return true;
    }
    const hs = this.#hardState();
    const p = this.#prevHardState;
    if (hs.term !== p.term || hs.vote !== p.vote || hs.commit !== p.commit) return true;
    return r.log.unstable.entries.length > 0 || r.log.unstable.snapshot !== undefined ||
      r.msgs.length > 0 || r.readStates.length > 0 || r.log.hasNextCommittedEntries();
  }

  /** The next batch of work. Call advance(ready) when done; do not call ready() before that. */
  ready(): Ready {
    invariant(this.#outstanding === undefined, "ready() called twice without advance()");
    const r = this.raft;
    r.flush();
    const rd: Ready = {
      entries: r.log.unstable.entries.slice(),
      messages: [],
      messagesAfterPersist: [],
      committedEntries: r.log.nextCommittedEntries(),
      readStates: r.readStates,
      mustSync: false,
    };
    r.readStates = [];
    const ss = this.#softState();
    if (ss.leader !== this.#prevSoftState.leader || ss.role !== this.#prevSoftState.role) {
      rd.softState = ss;
      this.#prevSoftState = ss;
    }
    const hs = this.#hardState();
    const p = this.#prevHardState;
    if (hs.term !== p.term || hs.vote !== p.vote || hs.commit !== p.commit) {
      invariant(hs.commit >= p.commit, () => `commit went back from ${p.commit} to ${hs.commit}`);
      rd.hardState = hs;
    }
    if (r.log.unstable.snapshot) rd.snapshot = r.log.unstable.snapshot;
    rd.mustSync = rd.entries.length > 0 || hs.term !== p.term || hs.vote !== p.vote;
    // A leader's replication messages carry a term that is already durable (it became leader
    // only after its vote requests, sent after persisting, were answered), and the entries they
    // carry are not counted as the leader's own until persisted: they may go before persisting.
    for (const m of r.msgs) {
      // An acknowledgement from an older term may cover entries a newer leader has since
      // truncated before they ever reached the disk; it is stale anyway, so it is dropped.
      if (m.type === "MsgAppResp" && !m.reject && m.term < r.term) continue;
      if (mayPrecedePersistence(m, p.term)) {
        rd.messages.push(m);
      } else {
        rd.messagesAfterPersist.push(m);
      }
    }
    r.msgs = [];
    this.#outstanding = rd;
    return rd;
  }

  /** Reports that `rd` was fully handled: persisted, sent and applied. */
  advance(rd: Ready): void {
    invariant(this.#outstanding === rd, "advance() with a Ready that is not the outstanding one");
    this.#outstanding = undefined;
    const r = this.raft;
    if (rd.hardState) this.#prevHardState = rd.hardState;
    if (rd.snapshot) r.log.stableSnapTo(rd.snapshot.meta.index);
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      r.onPersisted(last.index, last.term);
    }
    if (rd.snapshot && r.log.applied < rd.snapshot.meta.index) {
      r.log.appliedTo(rd.snapshot.meta.index);
    }
    if (rd.committedEntries.length > 0) {
      r.log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1].index);
      r.reduceUncommittedSize(rd.committedEntries);
    }
    r.maybeAutoLeave();
  }
}
