/**
 * The Raft state machine (Ongaro & Ousterhout, "In Search of an Understandable Consensus
 * Algorithm", and Ongaro's thesis), modelled on etcd-io/raft. Pure and synchronous: inputs are
 * ticks, messages and local requests; outputs accumulate in `msgs`, the log and `readStates`, and
 * RawNode turns them into a Ready. Section references (§) are to the paper unless noted.
 */

import {
  type ConfChange,
  configFromConfState,
  confStateFromConfig,
  encodeConfChange,
  type MembershipConfig,
  nextConfig,
} from "./confchange.ts";
import { type Config, type ReadState, type Role, type Status, validateConfig } from "./config.ts";
import { CompactedError, invariant, ProposalDropped, RaftError } from "./errors.ts";
import { RaftLog } from "./log.ts";
import { Progress } from "./progress.ts";
import { ReadOnly } from "./read_only.ts";
import { entrySizeBytes } from "./storage.ts";
import { ProgressTracker } from "./tracker.ts";
import type { ConfState, Entry, Message, MessageType, NodeId, Snapshot } from "./types.ts";

type CampaignKind = "preElection" | "election" | "transfer";

/** The context of vote requests that come from a leadership transfer: they bypass leases. */
export const transferContext = "transfer";

const emptyData = new Uint8Array();

/** A snapshot being received from the leader in chunks. */
interface IncomingSnapshot {
  meta: Snapshot["meta"];
  parts: Uint8Array[];
  receivedBytes: number;
}

export class Raft {
  readonly id: NodeId;
  /** currentTerm. Persisted. */
  term = 0;
  /** votedFor in `term`. Persisted. */
  vote: NodeId | null = null;
  /** The leader of `term` as far as this node knows. */
  lead: NodeId | null = null;
  role: Role = "follower";
  isLearner = false;
  readonly log: RaftLog;
  readonly prs: ProgressTracker;
  /** Outgoing messages since the last Ready. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly readOnlyOption: "safe" | "lease";
  readonly maxSizePerMsgBytes: number;
  readonly maxUncommittedBytes: number;
  readonly snapshotChunkBytes: number;
  readonly maxPendingReads: number;
  readonly #random: () => number;

  /** Ticks since the last election timeout reset (followers) or CheckQuorum round (leader). */
  electionElapsed = 0;
  heartbeatElapsed = 0;
  /** In [electionTicks, 2 * electionTicks), drawn again on every reset (§5.2). */
  randomizedElectionTimeout = 0;
  leadTransferee: NodeId | null = null;
  /** Index of the latest conf change in the log; a new one waits until it is applied. */
  pendingConfIndex = 0;
  uncommittedSizeBytes = 0;
  readOnly: ReadOnly;
  /** ReadIndex requests waiting for the leader to commit an entry of its term (thesis §6.4). */
  pendingReadIndex: { context: string; from: NodeId }[] = [];
  incomingSnapshot: IncomingSnapshot | undefined;
  /** Proposals were appended; MsgApp goes out once per Ready, batching them. */
  needBroadcast = false;

  constructor(c: Config) {
    validateConfig(c);
    this.id = c.id;
    this.electionTicks = c.electionTicks;
    this.heartbeatTicks = c.heartbeatTicks;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.readOnlyOption = c.readOnly;
    this.maxSizePerMsgBytes = c.maxSizePerMsgBytes;
    this.maxUncommittedBytes = c.maxUncommittedEntriesBytes ?? Infinity;
    this.snapshotChunkBytes = c.snapshotChunkBytes ?? 512 * 1024;
    this.maxPendingReads = c.maxPendingReads ?? 4096;
    this.#random = c.random;
    this.readOnly = new ReadOnly(this.maxPendingReads);
    this.log = new RaftLog(c.storage, c.maxCommittedSizePerReadyBytes ?? 64 * 1024 * 1024);
    const { hardState, confState } = c.storage.initialState();
    this.prs = new ProgressTracker(confState, c.maxInflightMsgs, c.maxInflightBytes ?? 0);
    this.prs.setConfig(this.prs.config, this.log.lastIndex() + 1);
    this.isLearner = this.prs.progress.get(this.id)?.isLearner ?? false;
    if (hardState.term !== 0 || hardState.vote !== null || hardState.commit !== 0) {
      invariant(
        hardState.commit >= this.log.committed && hardState.commit <= this.log.lastIndex(),
        () =>
          `hard state commit ${hardState.commit} out of [${this.log.committed}, ${this.log.lastIndex()}]`,
      );
      this.log.commitTo(hardState.commit);
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    if (c.applied !== undefined && c.applied > 0) this.log.appliedTo(c.applied);
    this.becomeFollower(this.term, null);
  }

  // ---- state transitions -------------------------------------------------------------------

  #reset(term: number): void {
    if (this.term !== term) {
      invariant(term > this.term, () => `term went back from ${this.term} to ${term}`);
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks +
      Math.floor(this.#random() * this.electionTicks);
    this.leadTransferee = null;
    this.prs.resetVotes();
    const next = this.log.lastIndex() + 1;
    for (const [id, old] of this.prs.progress) {
      const pr = new Progress(next, old.isLearner, this.prs.maxInflight, this.prs.maxInflightBytes);
      if (id === this.id) pr.match = this.log.lastStableIndex();
      this.prs.progress.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSizeBytes = 0;
    this.readOnly = new ReadOnly(this.maxPendingReads);
    this.pendingReadIndex = [];
    this.needBroadcast = false;
  }

  becomeFollower(term: number, lead: NodeId | null): void {
    this.#reset(term);
    this.lead = lead;
    this.role = "follower";
  }

  becomeCandidate(): void {
    invariant(this.role !== "leader", "leader cannot become candidate directly");
    this.#reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  /** Pre-Vote (thesis §9.6): ask first whether we could win, without raising our term. */
  becomePreCandidate(): void {
    invariant(this.role !== "leader", "leader cannot become pre-candidate");
    this.prs.resetVotes();
    this.lead = null;
    this.role = "precandidate";
  }

  becomeLeader(): void {
    invariant(this.role === "candidate", () => `${this.role} cannot become leader`);
    this.#reset(this.term);
    this.lead = this.id;
    this.role = "leader";
    const self = this.prs.progress.get(this.id);
    invariant(self !== undefined, "leader without its own progress");
    self.becomeReplicate();
    self.recentActive = true;
    // Conservatively assume the tail may hold an unapplied conf change.
    this.pendingConfIndex = this.log.lastIndex();
    // §5.4.2: a leader commits entries of earlier terms only by committing one of its own.
    this.#appendEntries([{ index: 0, term: 0, type: "normal", data: emptyData }]);
  }

  // ---- inputs ------------------------------------------------------------------------------

  tick(): void {
    if (this.role === "leader") this.#tickHeartbeat();
    else this.#tickElection();
  }

  #tickElection(): void {
    this.electionElapsed++;
    if (this.#promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.preVote ? "preElection" : "election");
    }
  }

  #tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        const active = this.prs.quorumActive(this.id);
        for (const [id, pr] of this.prs.progress) if (id !== this.id) pr.recentActive = false;
        if (!active) {
          // A leader that cannot hear a quorum steps down, so clients look elsewhere.
          this.becomeFollower(this.term, null);
          return;
        }
      }
      if (this.leadTransferee !== null) this.#abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.#broadcastHeartbeat();
    }
  }

  /** Starts an election now if this node may (used by campaign() and election timeouts). */
  hup(kind: CampaignKind): void {
    if (this.role === "leader") return;
    if (!this.#promotable()) return;
    // A pending conf change could make this node's view of the voters wrong.
    if (this.#hasUnappliedConfChanges()) return;
    this.#campaign(kind);
  }

  #promotable(): boolean {
    const pr = this.prs.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.log.unstable.snapshot === undefined;
  }

  #hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    for (const e of this.log.slice(lo, this.log.committed + 1)) if (e.type === "conf") return true;
    return false;
  }

  #campaign(kind: CampaignKind): void {
    let voteType: MessageType;
    let term: number;
    if (kind === "preElection") {
      this.becomePreCandidate();
      voteType = "MsgPreVote";
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = "MsgVote";
      term = this.term;
    }
    if (this.#poll(this.id, true) === "won") {
      // A single voter wins at once.
      if (kind === "preElection") this.#campaign("election");
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.prs.voterIds()) {
      if (id === this.id) continue;
      this.#send({
        type: voteType,
        to: id,
        term,
        index: lastIndex,
        logTerm: lastTerm,
        context: kind === "transfer" ? transferContext : undefined,
      });
    }
  }

  #poll(id: NodeId, granted: boolean) {
    this.prs.recordVote(id, granted);
    return this.prs.voteResult();
  }

  /** Handles a message from a peer. Messages for other nodes or of unknown type are dropped. */
  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term > this.term) {
      if (m.type === "MsgVote" || m.type === "MsgPreVote") {
        const force = m.context === transferContext;
        const inLease = this.checkQuorum && this.lead !== null &&
          this.electionElapsed < this.electionTicks;
        // A node that heard from a leader within the minimum election timeout ignores
        // campaigns (thesis §4.2.3): a rejoining partitioned node cannot depose a live leader.
        if (!force && inLease) return;
      }
      if (m.type === "MsgPreVote") {
        // Never change our term in response to a Pre-Vote.
      } else if (m.type === "MsgPreVoteResp" && !m.reject) {
        // The granted pre-vote carries the future term; we raise it only when the vote is won.
      } else if (m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgSnap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if (
        (this.checkQuorum || this.preVote) && (m.type === "MsgHeartbeat" || m.type === "MsgApp")
      ) {
        // A stale leader (e.g. after a partition) learns our term and steps down; without this
        // it could keep a node that ignores its stale messages from ever campaigning.
        this.#send({ type: "MsgAppResp", to: m.from });
      } else if (m.type === "MsgPreVote") {
        this.#send({ type: "MsgPreVoteResp", to: m.from, reject: true });
      }
      return;
    }

    switch (m.type) {
      case "MsgVote":
      case "MsgPreVote": {
        const canVote = this.vote === m.from ||
          (this.vote === null && this.lead === null) ||
          (m.type === "MsgPreVote" && m.term > this.term);
        const respType = m.type === "MsgVote" ? "MsgVoteResp" : "MsgPreVoteResp";
        if (canVote && this.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0)) {
          this.#send({ type: respType, to: m.from, term: m.term });
          if (m.type === "MsgVote") {
            this.electionElapsed = 0;
            this.vote = m.from;
          } else if (this.role === "precandidate" && m.from < this.id) {
            // Two pre-candidates that grant each other's Pre-Vote would both become candidates,
            // each voting for itself: a split vote, and another full election timeout. The one
            // with the higher id stands down, so the other's election meets no rival.
            this.becomeFollower(this.term, null);
          }
        } else {
          this.#send({ type: respType, to: m.from, reject: true });
        }
        return;
      }
    }
    switch (this.role) {
      case "leader":
        this.#stepLeader(m);
        return;
      case "candidate":
      case "precandidate":
        this.#stepCandidate(m);
        return;
      case "follower":
        this.#stepFollower(m);
        return;
    }
  }

  #stepLeader(m: Message): void {
    const pr = this.prs.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case "MsgAppResp":
        pr.recentActive = true;
        this.#handleAppendResponse(m, pr);
        return;
      case "MsgHeartbeatResp":
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // A full window may be full of lost messages: let one more through to find out.
        if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.state === "snapshot") this.#retrySnapshot(m.from, pr);
        else if (pr.match < this.log.lastIndex() || pr.state === "probe") {
          this.#maybeSendAppend(m.from, true);
        }
        if (this.readOnlyOption === "safe" && m.context) {
          const acks = this.readOnly.recvAck(m.from, m.context);
          if (acks && this.prs.voteResultOf(acks) === "won") {
            for (const r of this.readOnly.advance(m.context)) {
              this.#answerRead(r.from, r.context, r.index);
            }
          }
        }
        return;
      case "MsgSnapResp":
        pr.recentActive = true;
        this.#handleSnapshotResponse(m, pr);
        return;
      case "MsgTransferLeader":
        this.#handleTransferLeader(m.context ?? m.from);
        return;
      case "MsgReadIndex":
        this.#handleReadIndex(m.context ?? "", m.from);
        return;
      default:
        return;
    }
  }

  #handleAppendResponse(m: Message, pr: Progress): void {
    const index = m.index ?? 0;
    if (m.reject) {
      let nextProbe = m.rejectHint ?? 0;
      if ((m.logTermHint ?? 0) > 0) {
        nextProbe = this.log.findConflictByTerm(nextProbe, m.logTermHint!).index;
      }
      if (pr.maybeDecrTo(index, nextProbe)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.#maybeSendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!(pr.maybeUpdate(index) || (pr.match === index && pr.state === "probe"))) return;
    switch (pr.state) {
      case "probe":
        pr.becomeReplicate();
        break;
      case "snapshot":
        if (pr.match + 1 >= this.log.firstIndex()) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case "replicate":
        pr.inflights.freeLE(index);
        break;
    }
    if (this.#maybeCommit()) {
      this.#broadcastAppend();
    } else if (wasPaused) {
      this.#maybeSendAppend(m.from, true);
    }
    while (this.#maybeSendAppend(m.from, false)) { /* fill the pipeline */ }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.#send({ type: "MsgTimeoutNow", to: m.from });
    }
  }

  #stepCandidate(m: Message): void {
    const myResp: MessageType = this.role === "precandidate" ? "MsgPreVoteResp" : "MsgVoteResp";
    switch (m.type) {
      case "MsgApp":
        this.becomeFollower(m.term, m.from);
        this.#handleAppendEntries(m);
        return;
      case "MsgHeartbeat":
        this.becomeFollower(m.term, m.from);
        this.#handleHeartbeat(m);
        return;
      case "MsgSnap":
        this.becomeFollower(m.term, m.from);
        this.#handleSnapshot(m);
        return;
      case "MsgPreVoteResp":
      case "MsgVoteResp": {
        if (m.type !== myResp) return;
        const result = this.#poll(m.from, !m.reject);
        if (result === "won") {
          if (this.role === "precandidate") this.#campaign("election");
          else {
            this.becomeLeader();
            this.#broadcastAppend();
          }
        } else if (result === "lost") {
          this.becomeFollower(this.term, null);
        }
        return;
      }
      default:
        return;
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case "MsgApp":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#handleAppendEntries(m);
        return;
      case "MsgHeartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#handleHeartbeat(m);
        return;
      case "MsgSnap":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#handleSnapshot(m);
        return;
      case "MsgTransferLeader":
        if (this.lead !== null) {
          this.#send({ type: "MsgTransferLeader", to: this.lead, context: m.context });
        }
        return;
      case "MsgTimeoutNow":
        // The leader chose us: campaign at once, past Pre-Vote and leases.
        this.hup("transfer");
        return;
      case "MsgReadIndex":
        if (this.lead !== null) {
          this.#send({ type: "MsgReadIndex", to: this.lead, context: m.context });
        }
        return;
      case "MsgReadIndexResp":
        this.readStates.push({ index: m.index ?? 0, context: m.context ?? "" });
        return;
      default:
        return;
    }
  }

  // ---- follower side of replication --------------------------------------------------------

  #handleAppendEntries(m: Message): void {
    const index = m.index ?? 0;
    if (index < this.log.committed) {
      this.#send({ type: "MsgAppResp", to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(index, m.logTerm ?? 0, m.commit ?? 0, m.entries ?? []);
    if (lastNew !== undefined) {
      this.#send({ type: "MsgAppResp", to: m.from, index: lastNew });
      return;
    }
    // §5.3 optimisation: tell the leader where our log may match, skipping a conflicting term.
    const hint = this.log.findConflictByTerm(Math.min(index, this.log.lastIndex()), m.logTerm ?? 0);
    this.#send({
      type: "MsgAppResp",
      to: m.from,
      index,
      reject: true,
      rejectHint: hint.index,
      logTermHint: hint.term,
    });
  }

  #handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit ?? 0);
    this.#send({ type: "MsgHeartbeatResp", to: m.from, context: m.context });
  }

  #handleSnapshot(m: Message): void {
    const meta = m.snapshot;
    if (!meta) return;
    const offset = m.snapshotOffset ?? 0;
    const data = m.snapshotData ?? emptyData;
    let inc = this.incomingSnapshot;
    if (!inc || inc.meta.index !== meta.index || inc.meta.term !== meta.term) {
      if (offset !== 0) {
        // We lost the beginning (e.g. we restarted): ask the leader to start over.
        this.#send({ type: "MsgSnapResp", to: m.from, snapshot: meta, index: 0 });
        return;
      }
      inc = { meta, parts: [], receivedBytes: 0 };
      this.incomingSnapshot = inc;
    }
    if (offset !== inc.receivedBytes) {
      this.#send({ type: "MsgSnapResp", to: m.from, snapshot: meta, index: inc.receivedBytes });
      return;
    }
    inc.parts.push(data.slice());
    inc.receivedBytes += data.byteLength;
    this.#send({ type: "MsgSnapResp", to: m.from, snapshot: meta, index: inc.receivedBytes });
    if (!m.snapshotDone) return;
    this.incomingSnapshot = undefined;
    const full = new Uint8Array(inc.receivedBytes);
    let at = 0;
    for (const p of inc.parts) {
      full.set(p, at);
      at += p.byteLength;
    }
    if (this.restore({ meta, data: full })) {
      this.#send({ type: "MsgAppResp", to: m.from, index: this.log.lastIndex() });
    } else {
      this.#send({ type: "MsgAppResp", to: m.from, index: this.log.committed });
    }
  }

  /** Installs a snapshot from the leader. Returns false if it is not newer than our log. */
  restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    if (this.role !== "follower") {
      // Only a follower of the sender can receive a snapshot; anything else is a bug.
      invariant(false, () => `${this.role} ${this.id} asked to restore a snapshot`);
    }
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already have the entries: just fast-forward the commit index.
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.prs.progress = new Map();
    this.prs.setConfig(
      configFromConfState(s.meta.conf),
      this.log.lastIndex() + 1,
    );
    this.#afterConfigChange();
    return true;
  }

  // ---- leader side of replication ----------------------------------------------------------

  #appendEntries(es: Entry[]): boolean {
    let size = 0;
    for (const e of es) if (e.data.byteLength > 0) size += entrySizeBytes(e);
    if (
      this.uncommittedSizeBytes > 0 && size > 0 &&
      this.uncommittedSizeBytes + size > this.maxUncommittedBytes
    ) {
      return false;
    }
    this.uncommittedSizeBytes += size;
    let li = this.log.lastIndex();
    for (const e of es) {
      e.term = this.term;
      e.index = ++li;
    }
    this.log.append(es);
    this.needBroadcast = true;
    return true;
  }

  /** Reduces the uncommitted-bytes budget by entries that were committed and applied. */
  reduceUncommittedSize(ents: Entry[]): void {
    if (this.role !== "leader") return;
    let size = 0;
    for (const e of ents) if (e.data.byteLength > 0) size += entrySizeBytes(e);
    this.uncommittedSizeBytes = Math.max(0, this.uncommittedSizeBytes - size);
  }

  /**
   * The driver made entries up to (index, term) durable. The leader counts its own copy only
   * now, so an entry is committed only once a quorum has it on disk, leader included or not.
   */
  onPersisted(index: number, term: number): void {
    this.log.stableTo(index, term);
    if (this.role !== "leader") return;
    const self = this.prs.progress.get(this.id);
    if (self && self.maybeUpdate(this.log.lastStableIndex()) && this.#maybeCommit()) {
      this.needBroadcast = true;
    }
  }

  #maybeCommit(): boolean {
    const committed = this.log.maybeCommit(this.prs.committed(), this.term);
    if (committed) this.#releasePendingReadIndex();
    return committed;
  }

  /** Sends MsgApp to every member that is not paused (batched proposals, commit updates). */
  flush(): void {
    if (!this.needBroadcast) return;
    this.needBroadcast = false;
    if (this.role === "leader") this.#broadcastAppend();
  }

  #broadcastAppend(): void {
    this.needBroadcast = false;
    for (const id of this.prs.progress.keys()) {
      if (id === this.id) continue;
      if (this.#maybeSendAppend(id, true)) {
        while (this.#maybeSendAppend(id, false)) { /* fill the pipeline */ }
      }
    }
  }

  #broadcastHeartbeat(): void {
    const context = this.readOnly.lastPendingContext();
    for (const [id, pr] of this.prs.progress) {
      if (id === this.id) continue;
      this.#send({
        type: "MsgHeartbeat",
        to: id,
        commit: Math.min(pr.match, this.log.committed),
        context,
      });
    }
  }

  /** Sends entries (or an empty MsgApp if `sendIfEmpty`) to `to`, or a snapshot if compacted. */
  #maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      ents = this.log.entriesFrom(pr.next, this.maxSizePerMsgBytes);
    } catch (e) {
      if (e instanceof CompactedError) return this.#maybeSendSnapshot(to, pr);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of ents) bytes += entrySizeBytes(e);
    this.#send({
      type: "MsgApp",
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
    });
    pr.sentEntries(ents.length, bytes);
    return true;
  }

  #currentSnapshot(): Snapshot | undefined {
    try {
      return this.log.storage.snapshot();
    } catch (e) {
      if (e instanceof RaftError && e.code === "SnapshotUnavailable") return undefined;
      throw e;
    }
  }

  #maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    const snap = this.#currentSnapshot();
    if (!snap) return false;
    invariant(snap.meta.index > 0, "need a non-empty snapshot to catch up a follower");
    pr.becomeSnapshot(snap.meta.index);
    this.#sendSnapshotChunk(to, pr, snap);
    return true;
  }

  #sendSnapshotChunk(to: NodeId, pr: Progress, snap: Snapshot): void {
    const offset = pr.snapshotOffsetBytes;
    const end = Math.min(offset + this.snapshotChunkBytes, snap.data.byteLength);
    this.#send({
      type: "MsgSnap",
      to,
      snapshot: snap.meta,
      snapshotOffset: offset,
      snapshotData: snap.data.subarray(offset, end),
      snapshotDone: end === snap.data.byteLength,
    });
  }

  #handleSnapshotResponse(m: Message, pr: Progress): void {
    if (pr.state !== "snapshot" || m.snapshot?.index !== pr.pendingSnapshot) return;
    const snap = this.#currentSnapshot();
    if (!snap || snap.meta.index !== pr.pendingSnapshot || m.reject) {
      // A newer snapshot replaced it (or the follower failed): start over from a probe.
      pr.pendingSnapshot = 0;
      pr.becomeProbe();
      this.#maybeSendAppend(m.from, true);
      return;
    }
    const received = m.index ?? 0;
    pr.snapshotOffsetBytes = received;
    if (received < snap.data.byteLength) this.#sendSnapshotChunk(m.from, pr, snap);
  }

  /** On a heartbeat response in snapshot state: resend the unacknowledged chunk, or restart. */
  #retrySnapshot(to: NodeId, pr: Progress): void {
    const snap = this.#currentSnapshot();
    if (
      !snap || snap.meta.index !== pr.pendingSnapshot ||
      pr.snapshotOffsetBytes >= snap.data.byteLength
    ) {
      pr.pendingSnapshot = 0;
      pr.becomeProbe();
      this.#maybeSendAppend(to, true);
      return;
    }
    this.#sendSnapshotChunk(to, pr, snap);
  }

  // ---- local requests ----------------------------------------------------------------------

  /** Appends a proposal (leader only). Throws ProposalDropped otherwise. */
  propose(data: Uint8Array, type: "normal" | "conf" = "normal"): number {
    this.#checkCanPropose();
    if (!this.#appendEntries([{ index: 0, term: 0, type, data }])) {
      throw new ProposalDropped(
        "UncommittedLimit",
        `Cannot propose: ${this.uncommittedSizeBytes} uncommitted bytes, limit ${this.maxUncommittedBytes}`,
      );
    }
    return this.log.lastIndex();
  }

  /** Appends many proposals at once (leader only); returns the index of the last. */
  proposeBatch(datas: Uint8Array[]): number {
    this.#checkCanPropose();
    const es: Entry[] = datas.map((data) => ({ index: 0, term: 0, type: "normal", data }));
    if (!this.#appendEntries(es)) {
      throw new ProposalDropped(
        "UncommittedLimit",
        `Cannot propose ${datas.length} entries: ${this.uncommittedSizeBytes} uncommitted bytes, limit ${this.maxUncommittedBytes}`,
      );
    }
    return this.log.lastIndex();
  }

  #checkCanPropose(): void {
    if (this.role !== "leader" || !this.prs.progress.has(this.id)) {
      throw new ProposalDropped(
        "NotLeader",
        `Cannot propose on ${this.id}: not the leader (leader: ${this.lead})`,
      );
    }
    if (this.leadTransferee !== null) {
      throw new ProposalDropped(
        "LeaderTransferring",
        `Cannot propose on ${this.id}: leadership is moving to ${this.leadTransferee}`,
      );
    }
  }

  /** Appends a membership change (leader only), one at a time. */
  proposeConfChange(cc: ConfChange): number {
    this.#checkCanPropose();
    if (this.pendingConfIndex > this.log.applied) {
      throw new ProposalDropped(
        "ConfChangePending",
        `Cannot propose conf change: the one at ${this.pendingConfIndex} is not applied yet (applied ${this.log.applied})`,
      );
    }
    try {
      nextConfig(this.prs.config, cc);
    } catch (e) {
      if (e instanceof RaftError) throw new ProposalDropped("ConfChangeInvalid", e.message);
      throw e;
    }
    const index = this.propose(encodeConfChange(cc), "conf");
    this.pendingConfIndex = index;
    return index;
  }

  /** After applying: a leader in an auto-leave joint configuration proposes to leave it. */
  maybeAutoLeave(): void {
    if (this.role !== "leader" || !this.prs.config.autoLeave) return;
    if (this.log.applied < this.pendingConfIndex) return;
    if (!this.prs.progress.has(this.id)) return;
    const ok = this.#appendEntries([{
      index: 0,
      term: 0,
      type: "conf",
      data: encodeConfChange({ changes: [] }),
    }]);
    if (ok) this.pendingConfIndex = this.log.lastIndex();
  }

  /**
   * Applies a committed membership change. Invalid changes (which a leader never proposes) are
   * ignored identically on every node. Returns the configuration now in force.
   */
  applyConfChange(cc: ConfChange): ConfState {
    let cfg: MembershipConfig;
    try {
      cfg = nextConfig(this.prs.config, cc);
    } catch (e) {
      if (e instanceof RaftError) return confStateFromConfig(this.prs.config);
      throw e;
    }
    this.prs.setConfig(cfg, this.log.lastIndex() + 1);
    this.#afterConfigChange();
    return confStateFromConfig(cfg);
  }

  #afterConfigChange(): void {
    const self = this.prs.progress.get(this.id);
    this.isLearner = self?.isLearner ?? false;
    if (this.role !== "leader") return;
    if (!self || self.isLearner) {
      // Removed or demoted: step down so that the remaining voters elect a leader among them.
      this.becomeFollower(this.term, null);
      return;
    }
    if (this.leadTransferee !== null && !this.prs.isVoter(this.leadTransferee)) {
      this.#abortLeaderTransfer();
    }
    if (this.#maybeCommit()) this.#broadcastAppend();
    else this.needBroadcast = true;
  }

  transferLeader(to: NodeId): void {
    if (this.role === "leader") {
      this.#handleTransferLeader(to);
      return;
    }
    if (this.lead === null) {
      throw new RaftError("NoLeader", `Cannot transfer leadership to ${to}: no leader`);
    }
    this.#send({ type: "MsgTransferLeader", to: this.lead, context: to });
  }

  #handleTransferLeader(transferee: NodeId): void {
    const pr = this.prs.progress.get(transferee);
    if (!pr || pr.isLearner) return;
    if (this.leadTransferee !== null) {
      if (this.leadTransferee === transferee) return;
      this.#abortLeaderTransfer();
    }
    if (transferee === this.id) return;
    // The transfer must finish within one election timeout, else it is aborted.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) this.#send({ type: "MsgTimeoutNow", to: transferee });
    else this.#maybeSendAppend(transferee, true);
  }

  #abortLeaderTransfer(): void {
    this.leadTransferee = null;
  }

  /** Requests a linearizable read point; the answer arrives as a ReadState. */
  readIndex(context: string): void {
    if (this.role === "leader") {
      this.#handleReadIndex(context, this.id);
      return;
    }
    if (this.lead === null) {
      throw new RaftError("ReadIndexDropped", `Cannot read "${context}": no leader known`);
    }
    this.#send({ type: "MsgReadIndex", to: this.lead, context });
  }

  #handleReadIndex(context: string, from: NodeId): void {
    if (this.prs.isSingleton(this.id)) {
      this.#answerRead(from, context, this.log.committed);
      return;
    }
    if (!this.#committedEntryInCurrentTerm()) {
      // Our commit index may lag until an entry of our own term commits (thesis §6.4 step 1).
      if (this.pendingReadIndex.length >= this.maxPendingReads) {
        throw new RaftError("ReadIndexDropped", `Cannot read "${context}": too many pending reads`);
      }
      this.pendingReadIndex.push({ context, from });
      return;
    }
    this.#serveReadIndex(context, from);
  }

  #serveReadIndex(context: string, from: NodeId): void {
    if (this.readOnlyOption === "lease") {
      this.#answerRead(from, context, this.log.committed);
      return;
    }
    this.readOnly.add(this.log.committed, context, from, this.id);
    this.#broadcastHeartbeat();
  }

  #committedEntryInCurrentTerm(): boolean {
    return this.log.termOr0(this.log.committed) === this.term;
  }

  #releasePendingReadIndex(): void {
    if (this.pendingReadIndex.length === 0 || !this.#committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndex;
    this.pendingReadIndex = [];
    for (const r of pending) this.#serveReadIndex(r.context, r.from);
  }

  #answerRead(from: NodeId, context: string, index: number): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.#send({ type: "MsgReadIndexResp", to: from, index, context });
  }

  reportUnreachable(id: NodeId): void {
    const pr = this.prs.progress.get(id);
    if (this.role === "leader" && pr && pr.state === "replicate") pr.becomeProbe();
  }

  /**
   * The driver saw its connection from `id` close (a process that dies closes its sockets). If
   * `id` is this follower's leader, the follower forgets it and gives up its lease at once, so
   * its election timer has only the randomised part of the timeout left to run: a crashed leader
   * is replaced in [0, electionTicks) ticks instead of [electionTicks, 2·electionTicks).
   *
   * A false report (the connection broke, the leader lives) costs this follower its lease: its
   * Pre-Vote is refused by members still in theirs, and the leader's next heartbeat makes it a
   * follower again. False reports on a quorum at once (a sender that ended every stream while
   * alive) can cost a needless election, so drivers report only ends a live sender would not
   * cause. Ignored with `readOnly: "lease"`, whose leases must be honoured for a full election
   * timeout, and without Pre-Vote, where the follower's campaign would raise terms and depose a
   * live leader.
   */
  reportPeerDisconnected(id: NodeId): void {
    if (this.role !== "follower" || this.lead !== id) return;
    if (this.readOnlyOption === "lease" || !this.preVote) return;
    this.lead = null;
    this.electionElapsed = Math.max(this.electionElapsed, this.electionTicks);
  }

  /** The driver's verdict on a snapshot it delivered out of band. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.prs.progress.get(id);
    if (this.role !== "leader" || !pr || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for a heartbeat response before probing again.
    pr.msgAppFlowPaused = true;
  }

  // ---- output ------------------------------------------------------------------------------

  #send(m: Omit<Message, "from" | "term"> & { term?: number }): void {
    const msg = m as Message;
    msg.from = this.id;
    if (msg.term === undefined) msg.term = this.term;
    this.msgs.push(msg);
  }

  status(): Status {
    const progress: Status["progress"] = {};
    if (this.role === "leader") {
      for (const [id, pr] of this.prs.progress) {
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          learner: pr.isLearner,
          recentActive: pr.recentActive,
          inflight: pr.inflights.count(),
          pendingSnapshot: pr.pendingSnapshot,
        };
      }
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      conf: confStateFromConfig(this.prs.config),
      progress,
      leadTransferee: this.leadTransferee,
    };
  }
}
