/**
 * The durable Raft node: owns the core, the log store, the peer transport and the ticker, and
 * runs the Ready loop (see DESIGN.md):
 *
 *   drain inbox + proposals → ready() → [leader: send] → persist (one fsync) → [others: send]
 *   → apply → advance → maybe snapshot.
 *
 * Everything that arrives while one iteration awaits its fsync is handled by the next one, so
 * concurrent proposals share one append and one fsync (group commit).
 */

import { getLogger } from "@logtape/logtape";
import { ProposalDropped } from "../../raft/mod.ts";
import type {
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  Snapshot,
  SnapshotMeta,
} from "../../raft/types.ts";
import { createCore } from "./core_adapter.ts";
import type { ConfChangeRequest, CorePort, CoreReady, Role } from "./core_port.ts";
import {
  decodeEntry,
  decodeSnapshotData,
  encodeAppEntry,
  encodePeerEntry,
  encodeSnapshotHeader,
} from "./envelope.ts";
import { bytesEqual, concatBytesYielding } from "../util/bytes.ts";
import { NotLeaderError, RaftNodeError } from "./errors.ts";
import { readNodeFile, writeNodeFile } from "./node_file.ts";
import type { StateMachine, StateMachineEntry } from "./state_machine.ts";
import { SegmentLog } from "./storage/segment_log.ts";
import { SqliteLog } from "./storage/sqlite_log.ts";
import type { LogStore } from "./storage/types.ts";
import { PeerTransport, STREAM_MAX_AGE_MS } from "./transport/peer_transport.ts";
import { createRaftHandler } from "./transport/raft_handler.ts";
import { PeerListener } from "./transport/peer_listener.ts";
import { mark } from "../util/timeline.ts";

const logger = getLogger(["ctl", "raftnode", "node"]);
/** How long a member waits before copying its state again after a snapshot failed. */
const SNAPSHOT_RETRY_MS = 10_000;
/** Default of `RaftNodeOptions.snapshotKeepMs`. */
const SNAPSHOT_KEEP_MS = 30_000;
/** Microtask turns a peer stream pump needs from send() to its socket write (measured: 1; 2 for margin). */
const PUMP_TURNS = 2;

/** Default of `RaftNodeOptions.commitHoldMs`. */
const COMMIT_HOLD_MS = 1;
/** Default of `RaftNodeOptions.followerFsyncWaitMs`. */
const FOLLOWER_FSYNC_WAIT_MS = 0;

/** How to start a node. */
export interface RaftNodeOptions {
  /** This member's id. Required for a new member; checked against node.json on restart. */
  id?: NodeId;
  dataDir: string;
  stateMachine: StateMachine;
  /** Shared cluster secret peers prove on every request. */
  secret: string;
  /**
   * New member: every member's base URL (a fresh cluster: all initial voters, self included;
   * join: the existing members, self included). Ignored on restart, where node.json rules.
   */
  peers?: Record<NodeId, string>;
  /** Join an existing cluster (start with no membership; a leader adds this member). */
  join?: boolean;
  /** Log store for a new data directory; default "segment". */
  storage?: "segment" | "sqlite";
  /** Default 50 ms. */
  tickMs?: number;
  /** Election timeout in ticks (randomised up to twice this); default 10. */
  electionTicks?: number;
  /** Default 1. */
  heartbeatTicks?: number;
  /** Take a snapshot after this many applied entries; default 10000. */
  snapshotEntries?: number;
  /** Entries kept in the log behind a snapshot for slow followers; default 5000. */
  compactKeepEntries?: number;
  /**
   * How long the latest snapshot's data stays in memory after a follower last needed it; after
   * that it is on disk only and read back when a follower needs it again. Default 30000 ms.
   */
  snapshotKeepMs?: number;
  /**
   * How long a proposal may take to commit and apply before it fails with TIMEOUT; checked on each
   * tick, so it fails up to `tickMs` later. Default 10000 ms.
   */
  proposalTimeoutMs?: number;
  /** Default 100000. */
  pendingProposalsMax?: number;
  /** Default 1 MiB. */
  proposalBytesMax?: number;
  /**
   * How long a leader may hold an append that carries no entries (it only moves a follower's
   * commit index) for the next message to that follower to carry; default 1 ms, 0 sends it at
   * once. See DESIGN.md, "Commit-only appends".
   */
  commitHoldMs?: number;
  /**
   * How long an outbound peer stream lives before a fresh one replaces it; default 5000 ms (see
   * `PeerTransportOptions.streamMaxAgeMs`).
   */
  peerStreamMaxAgeMs?: number;
  /**
   * How long a member that is not the leader waits on the loop's own thread for its log's
   * fsync, which then runs on the log's own thread (`LogStore.appendWaiting`), before it applies
   * what is committed meanwhile; default 0: the fsync runs on the thread pool and the member
   * applies while it runs, as a leader always does. Done within the wait, the member
   * acknowledges first and applies after, so the leader's commit waits for this member's disk
   * alone; slower (a busy disk), it applies while the fsync finishes, so the reflectors it feeds
   * wait at most this long behind the disk. See DESIGN.md, "A follower's fsync".
   */
  followerFsyncWaitMs?: number;
  /** Inbound messages queued before peers are told to back off (503); default 100000. */
  inboxMessagesMax?: number;
  /** Prefix the handler is mounted under on every member; default "/raft". */
  pathPrefix?: string;
  /**
   * Where to take peer streams on plain TCP (`transport/peer_listener.ts`; port 0: any free
   * one); absent: peers stream over HTTP to the handler. Peers learn the port from the handler.
   */
  peerListen?: { hostname: string; port: number };
  /** Seed of election jitter; default random. */
  seed?: number;
  /**
   * Called when the loop fails (an fsync error or a broken invariant) and the node stopped
   * itself; a host process should exit so that a supervisor restarts it from disk.
   */
  onFatal?: (err: Error) => void;
  /** Wraps the opened log store (tests count appends through it). */
  wrapLogStore?: (log: LogStore) => LogStore;
}

/** A member as `status()` shows it. */
export interface MemberStatus {
  id: NodeId;
  url: string | null;
  voter: boolean;
  /** Replication progress as the leader sees it; 0 on followers. */
  matchIndex: number;
}

/** What `status()` returns. */
export interface RaftNodeStatus {
  id: NodeId;
  role: Role;
  term: number;
  leader: NodeId | null;
  commitIndex: number;
  appliedIndex: number;
  snapshotIndex: number;
  /** Whether the latest snapshot's data is in memory (else on disk only). */
  snapshotInMemory: boolean;
  members: MemberStatus[];
}

interface Pending {
  resolve(result: unknown): void;
  reject(err: Error): void;
  /** `performance.now()` after which the proposal fails with TIMEOUT (`expireProposals`). */
  deadline: number;
  /** The proposer's `local` (see `StateMachineEntry.local`). */
  local?: unknown;
}

/** A read barrier or a wait for a condition, each with a timer of its own (they are rare). */
interface TimedWaiter {
  resolve(result: unknown): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

interface ReadWaiter extends TimedWaiter {
  index: number | null;
}

interface ConditionWaiter extends TimedWaiter {
  check(): boolean;
}

/** A running member. Create with `RaftNode.start`. */
export class RaftNode {
  /** Mount under the path prefix of the server that serves `peers[id]`. */
  readonly handler: (req: Request) => Promise<Response>;
  private readonly inbox: Message[] = [];
  private readonly queuedProposals: { seq: number; data: Uint8Array }[] = [];
  private readonly queuedReads: string[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly reads = new Map<string, ReadWaiter>();
  private readonly conditions = new Set<ConditionWaiter>();
  private proposalSeq = 0;
  /** Tags this incarnation's proposals: sequence numbers restart with the process. */
  private readonly origin: string;
  private readSeq = 0;
  private pendingTicks = 0;
  /** When each peer was last heard from (any message), and when its stream was last reset. */
  private readonly heardAtMs = new Map<NodeId, number>();
  private readonly resetAtMs = new Map<NodeId, number>();
  private role: Role = "follower";
  private leader: NodeId | null = null;
  private applied: number;
  private snapshotIndex: number;
  /** A snapshot being taken off the loop (`snapshotToFile` or `snapshotConcurrently`), if any. */
  private snapshotting: Promise<void> | null = null;
  /** Index of the last applied membership entry (conf change or peer record). */
  private membershipChangedAt = 0;
  /** After a failed snapshot copy, no new one before this time (`performance.now()`). */
  private snapshotRetryAtMs = 0;
  /** Index of the snapshot whose file is durable (the one `log.loadSnapshotData` can read). */
  private snapshotOnDiskIndex: number;
  /** When a follower last needed the snapshot's data (`performance.now()`). */
  private snapshotNeededAtMs = -Infinity;
  /** A read of the snapshot's data back from disk, if one is under way. */
  private snapshotLoading: Promise<void> | null = null;
  /** After a failed read, no new one before this time (`performance.now()`). */
  private snapshotLoadRetryAtMs = 0;
  private stopped = false;
  /** A commit-only hard state not yet written (see handleReady). */
  private unwrittenHardState: HardState | null = null;
  private wakeUp: (() => void) | null = null;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private loop: Promise<void> = Promise.resolve();
  private readonly transport: PeerTransport;
  /** The peer port, when this member has one. */
  private peerListener: PeerListener | null = null;
  private readonly onFatal: ((err: Error) => void) | undefined;
  private readonly o: Required<
    Omit<
      RaftNodeOptions,
      | "id"
      | "peers"
      | "join"
      | "storage"
      | "seed"
      | "stateMachine"
      | "wrapLogStore"
      | "onFatal"
      | "peerListen"
    >
  >;

  private constructor(
    readonly id: NodeId,
    private readonly core: CorePort,
    private readonly log: LogStore,
    private readonly sm: StateMachine,
    private readonly peers: Record<NodeId, string>,
    private readonly storageKind: "segment" | "sqlite",
    private readonly initialVoters: NodeId[] | null,
    options: RaftNodeOptions,
    applied: number,
    snapshotIndex: number,
  ) {
    this.o = {
      dataDir: options.dataDir,
      secret: options.secret,
      tickMs: options.tickMs ?? 50,
      electionTicks: options.electionTicks ?? 10,
      heartbeatTicks: options.heartbeatTicks ?? 1,
      snapshotEntries: options.snapshotEntries ?? 10_000,
      compactKeepEntries: options.compactKeepEntries ?? 5_000,
      snapshotKeepMs: options.snapshotKeepMs ?? SNAPSHOT_KEEP_MS,
      proposalTimeoutMs: options.proposalTimeoutMs ?? 10_000,
      pendingProposalsMax: options.pendingProposalsMax ?? 100_000,
      proposalBytesMax: options.proposalBytesMax ?? 1024 * 1024,
      inboxMessagesMax: options.inboxMessagesMax ?? 100_000,
      commitHoldMs: options.commitHoldMs ?? COMMIT_HOLD_MS,
      peerStreamMaxAgeMs: options.peerStreamMaxAgeMs ?? STREAM_MAX_AGE_MS,
      followerFsyncWaitMs: options.followerFsyncWaitMs ?? FOLLOWER_FSYNC_WAIT_MS,
      pathPrefix: options.pathPrefix ?? "/raft",
    };
    this.applied = applied;
    this.snapshotIndex = snapshotIndex;
    this.snapshotOnDiskIndex = snapshotIndex;
    this.onFatal = options.onFatal;
    this.origin = `${id}/${crypto.randomUUID().slice(0, 8)}`;
    this.transport = new PeerTransport({
      secret: options.secret,
      pathPrefix: this.o.pathPrefix,
      streamMaxAgeMs: this.o.peerStreamMaxAgeMs,
      onUnreachable: (peer) => this.enqueueReport(() => this.core.reportUnreachable(peer)),
      onSnapshotStatus: (peer, ok) => this.enqueueReport(() => this.core.reportSnapshot(peer, ok)),
    });
    for (const [peerId, url] of Object.entries(peers)) {
      if (peerId !== id) this.transport.setPeer(peerId, url);
    }
    this.handler = createRaftHandler({
      secret: options.secret,
      pathPrefix: this.o.pathPrefix,
      deliver: (messages) => this.deliver(messages),
      onStreamEnd: (from) => this.peerDisconnected(from),
      peerPort: () => this.peerPort(),
    });
  }

  /**
   * Starts a member: restart when `dataDir` holds one (node.json), else a fresh cluster from
   * `peers`, or a joining member when `join` is set.
   */
  static async start(options: RaftNodeOptions): Promise<RaftNode> {
    const existing = await readNodeFile(options.dataDir);
    let id: NodeId;
    let peers: Record<NodeId, string>;
    let storageKind: "segment" | "sqlite";
    let initialVoters: NodeId[] | null = null;
    if (existing !== null) {
      if (options.id !== undefined && options.id !== existing.id) {
        throw new RaftNodeError(
          "BAD_START",
          `Cannot start "${options.id}": ${options.dataDir} belongs to member "${existing.id}"`,
        );
      }
      ({ id, peers, storage: storageKind, initialVoters } = existing);
    } else {
      if (options.id === undefined || options.peers === undefined) {
        throw new RaftNodeError(
          "BAD_START",
          `Cannot start a new member in ${options.dataDir}: id and peers are required`,
        );
      }
      id = options.id;
      peers = { ...options.peers };
      if (peers[id] === undefined) {
        throw new RaftNodeError("BAD_START", `Cannot start "${id}": peers does not list it`);
      }
      storageKind = options.storage ?? "segment";
      if (!options.join) initialVoters = Object.keys(peers).sort();
      // Written first: from here on the directory restarts as this member, and bootstraps
      // again identically if it crashes before persisting anything.
      await writeNodeFile(options.dataDir, { id, peers, storage: storageKind, initialVoters });
    }
    const opened = storageKind === "sqlite"
      ? await SqliteLog.open(options.dataDir)
      : await SegmentLog.open(options.dataDir);
    const log = options.wrapLogStore ? options.wrapLogStore(opened) : opened;
    const durable = await log.load();
    const sm = options.stateMachine;
    let snapshotIndex = durable.snapshot?.meta.index ?? 0;
    if (durable.snapshot !== null) {
      const { peers: snapPeers, state } = decodeSnapshotData(durable.snapshot.data);
      for (const [p, url] of Object.entries(snapPeers)) peers[p] ??= url;
      // Empty data is the founding snapshot of a new cluster: there is no state to restore.
      if (sm.appliedIndex() < snapshotIndex && durable.snapshot.data.length > 0) {
        await sm.restore(state, snapshotIndex);
      }
    }
    if (durable.hardState.commit < snapshotIndex) {
      // A snapshot holds only committed entries; the commit index itself is written lazily.
      durable.hardState = { ...durable.hardState, commit: snapshotIndex };
    }
    const lastIndex = durable.entries.at(-1)?.index ?? snapshotIndex;
    if (durable.hardState.commit > lastIndex) {
      // Only after a damaged tail was cut: the lost entries come back from the leader.
      logger.warn("Member {id}: commit index {commit} is past the recovered log end {last}", {
        id,
        commit: durable.hardState.commit,
        last: lastIndex,
      });
      durable.hardState = { ...durable.hardState, commit: lastIndex };
    }
    // The core re-delivers committed entries after the snapshot: conf changes and the peer
    // registry are rebuilt from them; the state machine skips what it already applied.
    const { core, bootstrap } = createCore({
      id,
      electionTicks: options.electionTicks ?? 10,
      heartbeatTicks: options.heartbeatTicks ?? 1,
      seed: options.seed ?? Math.floor(Math.random() * 2 ** 31),
      applied: snapshotIndex,
      hardState: durable.hardState,
      snapshot: durable.snapshot,
      entries: durable.entries,
      bootstrapVoters: durable.entries.length === 0 && durable.snapshot === null &&
          durable.hardState.term === 0
        ? initialVoters
        : null,
    });
    if (bootstrap !== null) {
      // The founding configuration must be durable before this member votes or acknowledges.
      await log.installSnapshot(bootstrap.snapshot);
      await log.append([], bootstrap.hardState);
      snapshotIndex = bootstrap.snapshot.meta.index;
    }
    const node = new RaftNode(
      id,
      core,
      log,
      sm,
      peers,
      storageKind,
      initialVoters,
      options,
      snapshotIndex,
      snapshotIndex,
    );
    logger.info(
      "Member {id} started ({mode}) with {entries} log entries after snapshot {snapshot}",
      {
        id,
        mode: existing ? "restart" : options.join ? "join" : "new cluster",
        entries: durable.entries.length,
        snapshot: snapshotIndex,
      },
    );
    if (options.peerListen !== undefined) {
      try {
        node.peerListener = PeerListener.listen({
          ...options.peerListen,
          secret: options.secret,
          deliver: (messages) => node.deliver(messages),
          onStreamEnd: (from) => node.peerDisconnected(from),
        });
      } catch (err) {
        await log.close();
        const at = `${options.peerListen.hostname}:${options.peerListen.port}`;
        throw new RaftNodeError(
          "BAD_START",
          `Cannot start "${id}": cannot listen for peers on ${at}: ${(err as Error).message}`,
        );
      }
    }
    node.ticker = setInterval(() => {
      node.pendingTicks++;
      node.expireProposals(performance.now());
      node.wake();
    }, node.o.tickMs);
    node.loop = node.run();
    return node;
  }

  /**
   * Proposes `data`; resolves with the state machine's result once the entry is committed and
   * applied here. Fails fast with NotLeaderError on a follower. `local` is handed to this
   * member's state machine with the entry (`StateMachineEntry.local`), never sent or stored.
   */
  propose(data: Uint8Array, local?: unknown): Promise<unknown> {
    if (this.stopped) return Promise.reject(new RaftNodeError("STOPPED", "Node is stopped"));
    if (this.role !== "leader") return Promise.reject(new NotLeaderError(this.leader));
    if (data.length > this.o.proposalBytesMax) {
      return Promise.reject(
        new RaftNodeError(
          "TOO_LARGE",
          `Proposal of ${data.length} bytes exceeds ${this.o.proposalBytesMax}`,
        ),
      );
    }
    if (this.pending.size >= this.o.pendingProposalsMax) {
      return Promise.reject(
        new RaftNodeError("OVERLOADED", `${this.pending.size} proposals already pending`),
      );
    }
    const seq = ++this.proposalSeq;
    return new Promise((resolve, reject) => {
      const deadline = performance.now() + this.o.proposalTimeoutMs;
      this.pending.set(seq, { resolve, reject, deadline, local });
      this.queuedProposals.push({ seq, data });
      this.wake();
    });
  }

  /**
   * Linearizable read barrier: resolves once this member has applied everything committed
   * before the call, as confirmed by the leader with a quorum.
   */
  readIndex(): Promise<void> {
    if (this.stopped) return Promise.reject(new RaftNodeError("STOPPED", "Node is stopped"));
    if (this.leader === null) return Promise.reject(new NotLeaderError(null));
    const context = `${this.id}:${++this.readSeq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reads.delete(context);
        reject(
          new RaftNodeError(
            "TIMEOUT",
            `Read index not confirmed within ${this.o.proposalTimeoutMs} ms`,
          ),
        );
      }, this.o.proposalTimeoutMs);
      this.reads.set(context, { resolve: () => resolve(), reject, timer, index: null });
      this.queuedReads.push(context);
      this.wake();
    });
  }

  /** Adds a non-voting member that replicates the log; resolves once the change is applied. */
  async addLearner(id: NodeId, url: string): Promise<void> {
    this.requireLeader();
    await this.runInLoop(() => this.core.propose(encodePeerEntry(id, url)));
    await this.waitFor(() => this.peers[id] === url, `peer URL of ${id} to be recorded`);
    await this.changeConf({ type: "addLearner", id }, (cs) => cs.learners.includes(id));
  }

  /** Makes a learner a voter once it has caught up with the commit index. */
  async promote(id: NodeId): Promise<void> {
    this.requireLeader();
    const target = this.core.status().commitIndex;
    await this.waitFor(
      () => (this.core.status().members.find((m) => m.id === id)?.matchIndex ?? 0) >= target,
      `learner ${id} to catch up to ${target}`,
    );
    await this.changeConf({ type: "addVoter", id }, (cs) => cs.voters.includes(id));
  }

  /** Removes a member (voter or learner). */
  async remove(id: NodeId): Promise<void> {
    this.requireLeader();
    await this.changeConf(
      { type: "remove", id },
      (cs) => !cs.voters.includes(id) && !cs.learners.includes(id),
    );
  }

  /** Hands leadership to `id`; resolves when this member sees `id` as leader. */
  async transferLeader(id: NodeId): Promise<void> {
    this.requireLeader();
    await this.runInLoop(() => this.core.transferLeader(id));
    await this.waitFor(() => this.leader === id, `leadership to move to ${id}`);
  }

  /** The member's view of the cluster. */
  status(): RaftNodeStatus {
    const s = this.core.status();
    const cs = this.core.confState();
    const progress = new Map(s.members.map((m) => [m.id, m.matchIndex]));
    const members: MemberStatus[] = [
      ...cs.voters.map((m) => ({ id: m, voter: true })),
      ...cs.learners.map((m) => ({ id: m, voter: false })),
    ].map((m) => ({
      ...m,
      url: this.peers[m.id] ?? null,
      matchIndex: progress.get(m.id) ?? 0,
    }));
    return {
      id: this.id,
      role: this.role,
      term: s.term,
      leader: this.leader,
      commitIndex: s.commitIndex,
      appliedIndex: this.applied,
      snapshotIndex: this.snapshotIndex,
      snapshotInMemory: this.core.storageSnapshotResident(),
      members,
    };
  }

  /** The port this member takes peer streams on, or null when they come over HTTP. */
  peerPort(): number | null {
    return this.peerListener?.port ?? null;
  }

  /** This member's role, without building a whole `status()` (asked on every request). */
  isLeader(): boolean {
    return this.role === "leader";
  }

  /** The URL of the leader this member knows of, if any. */
  leaderUrl(): string | null {
    return this.leader === null ? null : this.peers[this.leader] ?? null;
  }

  /** Peer URLs known to this member (id → URL). */
  peerUrls(): Record<NodeId, string> {
    return { ...this.peers };
  }

  /** Stops ticking, processing and sending; fails pending operations with STOPPED. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.ticker);
    this.wake();
    await this.loop.catch(() => {});
    for (const task of this.loopTasks.splice(0)) {
      task.done(new RaftNodeError("STOPPED", "Node is stopped"));
    }
    await this.snapshotting;
    await this.snapshotLoading;
    if (this.unwrittenHardState !== null) {
      await this.log.append([], this.unwrittenHardState).catch(() => {});
    }
    await this.peerListener?.close();
    await this.transport.close();
    await this.log.close();
    const err = new RaftNodeError("STOPPED", "Node stopped");
    this.failAll(err);
  }

  // --- the loop -------------------------------------------------------------------------

  private readonly reports: (() => void)[] = [];
  private readonly disconnectedPeers: NodeId[] = [];
  private readonly loopTasks: { run(): void; done(err: Error | null): void }[] = [];

  private enqueueReport(report: () => void): void {
    if (this.reports.length < 10_000) this.reports.push(report);
    this.wake();
  }

  /** Runs `fn` on the loop, between iterations (the core is not re-entrant). */
  private runInLoop(fn: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.stopped) return reject(new RaftNodeError("STOPPED", "Node is stopped"));
      this.loopTasks.push({ run: fn, done: (err) => (err ? reject(err) : resolve()) });
      this.wake();
    });
  }

  /**
   * A peer's stream to us ended. Stepped after the messages it delivered (a heartbeat still in
   * the inbox would otherwise undo the report): if it was the leader's, this member campaigns
   * after only the random part of its election timeout.
   */
  private peerDisconnected(from: NodeId): void {
    if (this.stopped || this.disconnectedPeers.length >= 1000) return;
    this.disconnectedPeers.push(from);
    this.wake();
  }

  private deliver(messages: Message[]): void {
    if (this.stopped) throw new RaftNodeError("STOPPED", "Node is stopped");
    if (this.inbox.length + messages.length > this.o.inboxMessagesMax) {
      throw new RaftNodeError("OVERLOADED", `Inbox holds ${this.inbox.length} messages`);
    }
    const now = performance.now();
    for (const m of messages) {
      this.inbox.push(m);
      this.heardAtMs.set(m.from, now);
    }
    this.wake();
  }

  /**
   * Reconnects to peers not heard from for two election timeouts (at most once per that period
   * each): a leader whose stream to a restarted follower silently leads nowhere would otherwise
   * never reach it, and the follower would stay a pre-candidate.
   */
  private resetSilentStreams(): void {
    const now = performance.now();
    const silentMs = 2 * this.o.electionTicks * this.o.tickMs;
    for (const peer of Object.keys(this.peers)) {
      if (peer === this.id) continue;
      if (!this.heardAtMs.has(peer)) this.heardAtMs.set(peer, now);
      if (now - this.heardAtMs.get(peer)! < silentMs) continue;
      if (now - (this.resetAtMs.get(peer) ?? 0) < silentMs) continue;
      this.resetAtMs.set(peer, now);
      this.transport.resetStream(peer);
    }
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  private hasWork(): boolean {
    return this.pendingTicks > 0 || this.inbox.length > 0 || this.queuedProposals.length > 0 ||
      this.queuedReads.length > 0 || this.reports.length > 0 || this.loopTasks.length > 0 ||
      this.disconnectedPeers.length > 0;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.hasWork() && !this.core.hasReady()) {
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        continue;
      }
      try {
        this.feedCore();
        if (this.core.hasReady()) await this.handleReady(this.core.ready());
      } catch (err) {
        if (this.stopped) break;
        // A failed fsync or an invariant breach: continuing could lose acknowledged data.
        logger.fatal("Raft loop failed; stopping member {id}: {error}", {
          id: this.id,
          error: String((err as Error)?.stack ?? err),
        });
        this.stopped = true;
        clearInterval(this.ticker);
        this.failAll(new RaftNodeError("STOPPED", `Node failed: ${String(err)}`));
        this.onFatal?.(err instanceof Error ? err : new Error(String(err)));
        return;
      }
    }
  }

  private feedCore(): void {
    const ticks = Math.min(this.pendingTicks, this.o.electionTicks);
    this.pendingTicks = 0;
    if (ticks > 0) {
      this.resetSilentStreams();
      this.keepSnapshotDataWhileNeeded();
    }
    for (let i = 0; i < ticks; i++) this.core.tick();
    for (const report of this.reports.splice(0)) report();
    for (const task of this.loopTasks.splice(0)) {
      try {
        task.run();
        task.done(null);
      } catch (err) {
        task.done(this.dropReason(err));
      }
    }
    for (const m of this.inbox.splice(0)) {
      try {
        this.core.step(m);
      } catch (err) {
        logger.warn("Dropped message {type} from {from}: {error}", {
          type: m.type,
          from: m.from,
          error: String(err),
        });
      }
    }
    for (const id of this.disconnectedPeers.splice(0)) this.core.reportPeerDisconnected(id);
    for (const p of this.queuedProposals.splice(0)) {
      try {
        this.core.propose(encodeAppEntry(this.origin, p.seq, p.data));
      } catch (err) {
        this.failPending(p.seq, this.dropReason(err));
      }
    }
    for (const context of this.queuedReads.splice(0)) {
      try {
        this.core.readIndex(context);
      } catch {
        this.failRead(context, new NotLeaderError(this.leader));
      }
    }
  }

  private async handleReady(rd: CoreReady): Promise<void> {
    mark("ready");
    if (rd.softState !== null) this.onSoftState(rd.softState.role, rd.softState.leader);
    // The core splits messages: a leader's appends may go before its own fsync (Raft thesis
    // §10.2.1; the core counts the leader's copy only once advance() reports it durable); votes
    // and acknowledgements go only after the fsync.
    const sent = this.sendReadyMessages(rd.messages);
    if (sent > 0) {
      // The peer streams write from their own async pumps, a few microtask turns after send():
      // yielding here puts a leader's appends on the wire before this member's blocking log
      // write, so followers start their fsync sooner, and a new commit index before the apply
      // below, so followers apply alongside (a socket write is issued when called).
      for (let i = 0; i < PUMP_TURNS; i++) await Promise.resolve();
    }
    if (rd.snapshot !== null) await this.installSnapshot(rd.snapshot);
    let persisting: Promise<void> | null = null;
    let sentAfterPersist = false;
    if (rd.entries.length === 0 && rd.hardState !== null && !rd.mustSync) {
      // Only the commit index moved: no write now; it rides along with the next append (a lost
      // commit index is learned again from the leader).
      this.unwrittenHardState = rd.hardState;
      this.core.storageSetHardState(rd.hardState);
    } else if (rd.entries.length > 0 || rd.hardState !== null) {
      const hardState = rd.hardState ?? this.unwrittenHardState;
      this.unwrittenHardState = null;
      const waitMs = this.role === "leader" ? 0 : this.o.followerFsyncWaitMs;
      const appended = waitMs > 0 && this.log.appendWaiting !== undefined
        ? this.log.appendWaiting(rd.entries, hardState, waitMs)
        : this.log.append(rd.entries, hardState);
      if (appended === true) {
        // Durable already: acknowledge now and apply after, so that the leader's commit waits
        // for this member's disk alone, not for its apply as well.
        this.recordDurable(rd);
        sentAfterPersist = true;
        if (this.sendAfterPersist(rd)) {
          // A stream pump writes a few microtask turns after send(); the apply below would
          // otherwise hold the acknowledgement back for as long as it runs.
          for (let i = 0; i < PUMP_TURNS; i++) await Promise.resolve();
        }
      } else {
        // The fsync is still running (a leader's always is): apply meanwhile.
        persisting = appended;
      }
    }
    // A leader applies while its fsync runs, as etcd's server does: committed entries are on a
    // quorum's disks already (a leader counts its own copy only once advance() says it is
    // durable), so a crash before this fsync loses only a log tail the leader sends again, and
    // the state machine skips what it already applied.
    if (rd.committedEntries.length > 0) {
      try {
        mark("apply");
        await this.applyCommitted(rd.committedEntries);
        mark("applied");
      } catch (err) {
        persisting?.catch(() => {}); // the loop fails on `err`; the append's fate is moot
        throw err;
      }
    }
    if (persisting !== null) {
      if (this.role === "leader") {
        try {
          this.speculate(rd.entries);
        } catch (err) {
          persisting.catch(() => {}); // the loop fails on `err`, as on a failed apply
          throw err;
        }
      }
      await persisting;
      this.recordDurable(rd);
    }
    if (!sentAfterPersist) this.sendAfterPersist(rd);
    for (const rs of rd.readStates) {
      const w = this.reads.get(rs.context);
      if (w) w.index = rs.index;
    }
    this.core.advance(rd);
    this.settleWaiters();
    await this.maybeSnapshot();
  }

  /**
   * Offers the state machine a lone writer's entry to apply ahead (`StateMachine.speculate`)
   * while the quorum's fsyncs run: the leader's loop would only wait meanwhile, and the apply
   * then leaves the write's path. Only when it is this Ready's one entry, the only pending
   * proposal, and next to apply: under load, batches serve throughput instead, and an entry
   * speculated on behind others would have to wait for theirs.
   */
  private speculate(entries: Entry[]): void {
    if (this.sm.speculate === undefined || entries.length !== 1 || this.pending.size !== 1) return;
    const e = entries[0];
    if (e.type === "conf" || e.index !== this.applied + 1) return;
    const payload = decodeEntry(e.data);
    if (payload?.kind !== "app" || payload.origin !== this.origin) return;
    const local = this.pending.get(payload.seq)?.local;
    if (local === undefined) return;
    this.sm.speculate({ index: e.index, term: e.term, kind: "app", data: payload.payload, local });
  }

  /** Tells the core's storage that a Ready's hard state and entries are on disk. */
  private recordDurable(rd: CoreReady): void {
    if (rd.hardState !== null) this.core.storageSetHardState(rd.hardState);
    if (rd.entries.length > 0) this.core.storageAppend(rd.entries);
  }

  /** Sends the messages that had to wait for the Ready's append; returns whether there were any. */
  private sendAfterPersist(rd: CoreReady): boolean {
    this.transport.send(rd.messagesAfterPersist);
    if (rd.messagesAfterPersist.length === 0) return false;
    mark("acked");
    return true;
  }

  /**
   * Sends a Ready's messages, except that a leader holds appends with no entries (a commit index
   * for a caught-up follower) for up to `commitHoldMs`: the next append, usually close behind
   * under load, carries them in the same frame. Returns how many went out now.
   */
  private sendReadyMessages(messages: Message[]): number {
    if (this.role !== "leader" || this.o.commitHoldMs <= 0) {
      this.transport.send(messages);
      return messages.length;
    }
    const now: Message[] = [];
    const later: Message[] = [];
    for (const m of messages) (m.type === "MsgApp" && !m.entries?.length ? later : now).push(m);
    if (later.length > 0) this.transport.hold(later, this.o.commitHoldMs);
    this.transport.send(now);
    return now.length;
  }

  /** Maps the core's ProposalDropped to the node's typed errors. */
  private dropReason(err: unknown): Error {
    if (err instanceof ProposalDropped) {
      if (err.reason === "NotLeader") return new NotLeaderError(this.leader);
      if (err.reason === "UncommittedLimit") return new RaftNodeError("OVERLOADED", err.message);
      if (err.reason === "ConfChangePending" || err.reason === "ConfChangeInvalid") {
        return new RaftNodeError("BAD_MEMBERSHIP", err.message);
      }
      return new RaftNodeError("PROPOSAL_DROPPED", err.message);
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  private onSoftState(role: Role, leader: NodeId | null): void {
    const wasLeader = this.role === "leader";
    if (role !== this.role || leader !== this.leader) {
      logger.info("Member {id} is {role} (leader {leader}, term {term})", {
        id: this.id,
        role,
        leader: leader ?? "unknown",
        term: this.core.status().term,
      });
    }
    this.role = role;
    this.leader = leader;
    if (wasLeader && role !== "leader") {
      this.sm.abandonSpeculation?.();
      // Entries proposed here may still commit under the new leader, or be overwritten.
      for (const seq of [...this.pending.keys()]) {
        this.failPending(
          seq,
          new RaftNodeError("PROPOSAL_DROPPED", "Leadership lost; outcome of proposal unknown"),
        );
      }
    }
  }

  private async installSnapshot(snapshot: Snapshot): Promise<void> {
    await this.log.installSnapshot(snapshot);
    this.core.storageApplySnapshot(snapshot);
    this.snapshotOnDiskIndex = snapshot.meta.index;
    const { peers, state } = decodeSnapshotData(snapshot.data);
    let changed = false;
    for (const [p, url] of Object.entries(peers)) changed = this.recordPeer(p, url) || changed;
    if (changed) await this.persistPeers();
    if (snapshot.data.length > 0) await this.sm.restore(state, snapshot.meta.index);
    this.applied = snapshot.meta.index;
    this.snapshotIndex = snapshot.meta.index;
    this.membershipChangedAt = snapshot.meta.index;
    logger.info("Member {id} installed snapshot {index}/{term}", {
      id: this.id,
      index: snapshot.meta.index,
      term: snapshot.meta.term,
    });
  }

  private async applyCommitted(entries: Entry[]): Promise<void> {
    const smApplied = this.sm.appliedIndex();
    const batch: StateMachineEntry[] = [];
    const mine: { at: number; seq: number }[] = [];
    let peersChanged = false;
    for (const e of entries) {
      if (e.index <= this.applied) continue;
      let kind: "app" | "internal" = "internal";
      let data: Uint8Array = new Uint8Array(0);
      let local: unknown;
      if (e.type === "conf") {
        this.membershipChangedAt = e.index;
        const cs = this.core.applyConfChange(e);
        this.onConfState(cs);
      } else {
        const payload = decodeEntry(e.data);
        if (payload?.kind === "app") {
          kind = "app";
          data = payload.payload;
          if (payload.origin === this.origin) {
            mine.push({ at: batch.length, seq: payload.seq });
            local = this.pending.get(payload.seq)?.local;
          }
        } else if (payload?.kind === "peer") {
          this.membershipChangedAt = e.index;
          peersChanged = this.recordPeer(payload.id, payload.url) || peersChanged;
        }
      }
      if (e.index > smApplied) {
        batch.push(
          local === undefined
            ? { index: e.index, term: e.term, kind, data }
            : { index: e.index, term: e.term, kind, data, local },
        );
      }
    }
    if (peersChanged) await this.persistPeers();
    if (batch.length > 0) {
      const results = await this.sm.apply(batch);
      if (results.length !== batch.length) {
        throw new Error(`State machine returned ${results.length} results for ${batch.length}`);
      }
      for (const { at, seq } of mine) {
        const p = this.pending.get(seq);
        if (p === undefined) continue;
        this.pending.delete(seq);
        p.resolve(results[at]);
      }
    }
    this.applied = entries[entries.length - 1].index;
  }

  private onConfState(cs: ConfState): void {
    const members = new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing]);
    for (const [p, url] of Object.entries(this.peers)) {
      if (p !== this.id && members.has(p)) this.transport.setPeer(p, url);
    }
    logger.info("Member {id}: membership is now voters={voters} learners={learners}", {
      id: this.id,
      voters: cs.voters.join(","),
      learners: cs.learners.join(","),
    });
  }

  private recordPeer(id: NodeId, url: string): boolean {
    if (this.peers[id] === url) return false;
    this.peers[id] = url;
    if (id !== this.id) this.transport.setPeer(id, url);
    return true;
  }

  private persistPeers(): Promise<void> {
    return writeNodeFile(this.o.dataDir, {
      id: this.id,
      peers: this.peers,
      storage: this.storageKind,
      initialVoters: this.initialVoters,
    });
  }

  private async maybeSnapshot(): Promise<void> {
    if (this.applied - this.snapshotIndex < this.o.snapshotEntries) return;
    if (this.snapshotting !== null || performance.now() < this.snapshotRetryAtMs) return;
    if (this.sm.snapshotToFile !== undefined) {
      this.snapshotting = this.recordSnapshotFromFile(this.applied)
        .finally(() => (this.snapshotting = null));
      return;
    }
    let copy: Promise<{ index: number; data: Uint8Array }>;
    if (this.sm.snapshotConcurrently !== undefined) {
      copy = this.sm.snapshotConcurrently();
    } else {
      // Taken here, inside the loop, so it is the state at the applied index — when the two
      // are equal: after a restart the state machine may be ahead of the log until the leader
      // re-sends a lost tail.
      if (this.sm.appliedIndex() !== this.applied) return;
      copy = Promise.resolve({ index: this.applied, data: await this.sm.snapshot() });
    }
    this.snapshotting = this.recordSnapshot(this.applied, copy)
      .finally(() => (this.snapshotting = null));
  }

  /**
   * Records a copy of the state as a Raft snapshot, while the loop goes on applying: the copy is
   * the state at some index ≥ `startedAt` (the applied index when it began); the loop records it
   * at that index, unless membership changed since the copy began (the configuration at the
   * copy's index would be unknown) or a newer snapshot arrived meanwhile. Only a durable
   * snapshot compacts the log.
   */
  private async recordSnapshot(
    startedAt: number,
    copy: Promise<{ index: number; data: Uint8Array }>,
  ): Promise<void> {
    try {
      const { index, data } = await copy;
      // The peer registry goes in front of the state, copied a slice at a time: one copy of a
      // large state (355 MB: 200–400 ms) held the Raft loop and the HTTP server.
      const header = encodeSnapshotHeader(this.peers);
      const wrapped = await concatBytesYielding([header, data]);
      let snap: Snapshot | null = null;
      await this.runInLoop(() => {
        if (!this.mayRecordSnapshot(index, startedAt)) return;
        // The peer registry changed while the copy was wrapped: next time, then.
        if (!bytesEqual(encodeSnapshotHeader(this.peers), header)) return;
        snap = this.core.storageCreateSnapshot(index, this.core.confState(), wrapped);
        this.snapshotIndex = index;
      });
      if (snap === null) return;
      const taken: Snapshot = snap;
      await this.log.saveSnapshot(taken);
      this.snapshotOnDiskIndex = Math.max(this.snapshotOnDiskIndex, index);
      await this.compactBehind(index, taken.data.length);
    } catch (err) {
      this.snapshotFailed(err);
    }
  }

  /**
   * Records a copy the state machine wrote to a file (`snapshotToFile`) as a Raft snapshot: the
   * snapshot file is built from it by a worker (the peer registry in front), published, and only
   * then recorded in the core, on disk only; the data enters memory only if a follower needs it.
   * The same rules as `recordSnapshot` decide whether the copy is used.
   */
  private async recordSnapshotFromFile(startedAt: number): Promise<void> {
    let dir: string | null = null;
    try {
      // Beside other temporary files, not in the data directory: the copy is as large as the
      // state, and only the snapshot file built from it needs to stay.
      dir = await Deno.makeTempDir({ prefix: "ctl-snapshot-copy-" });
      const path = `${dir}/state`;
      const { index } = await this.sm.snapshotToFile!(path);
      let meta: SnapshotMeta | null = null;
      let header: Uint8Array = new Uint8Array();
      await this.runInLoop(() => {
        if (!this.mayRecordSnapshot(index, startedAt)) return;
        meta = { index, term: this.core.storageTerm(index), conf: this.core.confState() };
        header = encodeSnapshotHeader(this.peers);
      });
      if (meta === null) return;
      const taken: SnapshotMeta = meta;
      await this.log.saveSnapshotFromFile(taken, header, path);
      const bytes = header.length + (await Deno.stat(path)).size;
      let recorded = false;
      await this.runInLoop(() => {
        // A snapshot from the leader may have been installed meanwhile.
        if (this.stopped || index <= this.snapshotIndex) return;
        this.core.storageCreateSnapshot(index, taken.conf, null);
        this.snapshotIndex = index;
        recorded = true;
      });
      if (!recorded) return;
      this.snapshotOnDiskIndex = Math.max(this.snapshotOnDiskIndex, index);
      await this.compactBehind(index, bytes);
    } catch (err) {
      this.snapshotFailed(err);
    } finally {
      if (dir !== null) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  /**
   * Whether a copy of the state at `index`, begun at applied index `startedAt`, may be recorded:
   * not when stale, or taken across a membership change (the configuration at `index` would be
   * unknown), or (only after a restart, while the state machine is ahead of the log) past what
   * the log has applied. Runs on the loop.
   */
  private mayRecordSnapshot(index: number, startedAt: number): boolean {
    if (this.stopped || index <= this.snapshotIndex || index > this.applied) return false;
    if (this.membershipChangedAt > startedAt) return false;
    if (index < startedAt) {
      throw new Error(`snapshot at ${index} is older than the applied index ${startedAt}`);
    }
    return true;
  }

  /** After a durable snapshot at `index`: drops the log behind it but `compactKeepEntries`. */
  private async compactBehind(index: number, bytes: number): Promise<void> {
    const compactTo = index - this.o.compactKeepEntries;
    let compact = false;
    await this.runInLoop(() => {
      compact = !this.stopped && compactTo > this.core.storageFirstIndex() &&
        compactTo <= this.snapshotIndex;
      if (compact) this.core.storageCompact(compactTo);
    });
    if (compact) await this.log.compact(compactTo);
    logger.info("Member {id} took snapshot {index} ({bytes} bytes), compacted to {compactTo}", {
      id: this.id,
      index,
      bytes,
      compactTo,
    });
  }

  private snapshotFailed(err: unknown): void {
    if (this.stopped) return;
    // A failed copy leaves the log uncompacted, nothing worse; try again in a while rather
    // than after every loop iteration (a full disk would otherwise mean a copy per Ready).
    this.snapshotRetryAtMs = performance.now() + SNAPSHOT_RETRY_MS;
    logger.warn("Member {id} could not take a snapshot (next try in {seconds} s): {error}", {
      seconds: SNAPSHOT_RETRY_MS / 1000,
      id: this.id,
      error: String(err),
    });
  }

  /**
   * Keeps the latest snapshot's data in memory only while followers need it (a large state would
   * otherwise be held twice for good, in the state machine and here, 474 MB in one benchmark):
   * it goes once it is on disk and no follower has been sent it for `snapshotKeepMs`. When a
   * leader needs it again the core asks (`storageWantedSnapshot`) and it is read back off the
   * loop; the core tries the follower again at its next heartbeat response. Runs on the loop.
   */
  private keepSnapshotDataWhileNeeded(): void {
    const now = performance.now();
    const wanted = this.core.storageWantedSnapshot();
    if (wanted !== null) {
      if (this.snapshotLoading === null && now >= this.snapshotLoadRetryAtMs) {
        this.snapshotLoading = this.loadSnapshotData(wanted)
          .finally(() => (this.snapshotLoading = null));
      }
      return;
    }
    if (!this.core.storageSnapshotResident()) return;
    if (this.role === "leader" && this.core.status().members.some((m) => m.sendingSnapshot)) {
      this.snapshotNeededAtMs = now;
      return;
    }
    if (now - this.snapshotNeededAtMs < this.o.snapshotKeepMs) return;
    // Not before its file is durable: that is where it would be read back from.
    if (this.core.storageSnapshotIndex() !== this.snapshotOnDiskIndex) return;
    this.core.storageReleaseSnapshotData();
  }

  private async loadSnapshotData(index: number): Promise<void> {
    try {
      const started = performance.now();
      const data = await this.log.loadSnapshotData(index);
      if (data === null) {
        // Replaced meanwhile (the core asks for the newer one when it needs it); or a snapshot
        // being recorded has published its file, which removed this one, and the core learns of
        // it in a moment; or the file is gone: then say so, and try again only after a pause
        // rather than on every tick.
        let missing = false;
        await this.runInLoop(() => {
          missing = this.core.storageSnapshotIndex() === index && this.snapshotting === null;
        });
        if (missing) throw new Error(`the file of snapshot ${index} is missing`);
        return;
      }
      let restored = false;
      await this.runInLoop(() => {
        restored = this.core.storageRestoreSnapshotData(index, data);
        if (restored) this.snapshotNeededAtMs = performance.now();
      });
      if (restored) {
        logger.info(
          "Member {id} read snapshot {index} ({bytes} bytes) back in {ms} ms to send it",
          {
            id: this.id,
            index,
            bytes: data.length,
            ms: Math.round(performance.now() - started),
          },
        );
      }
    } catch (err) {
      if (this.stopped) return;
      this.snapshotLoadRetryAtMs = performance.now() + SNAPSHOT_RETRY_MS;
      logger.error(
        "Member {id} could not read snapshot {index} back (next try in {seconds} s): {error}",
        {
          id: this.id,
          index,
          seconds: SNAPSHOT_RETRY_MS / 1000,
          error: String(err),
        },
      );
    }
  }

  // --- waiters --------------------------------------------------------------------------

  private requireLeader(): void {
    if (this.stopped) throw new RaftNodeError("STOPPED", "Node is stopped");
    if (this.role !== "leader") throw new NotLeaderError(this.leader);
  }

  private async changeConf(
    change: ConfChangeRequest,
    done: (cs: ConfState) => boolean,
  ): Promise<void> {
    await this.runInLoop(() => this.core.proposeConfChange(change));
    await this.waitFor(() => done(this.core.confState()), `${change.type} ${change.id}`);
  }

  private waitFor(check: () => boolean, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: ConditionWaiter = {
        check,
        resolve: () => resolve(),
        reject,
        timer: setTimeout(() => {
          this.conditions.delete(waiter);
          reject(new RaftNodeError("TIMEOUT", `Timed out waiting for ${what}`));
        }, this.o.proposalTimeoutMs),
      };
      this.conditions.add(waiter);
    });
  }

  private settleWaiters(): void {
    for (const [context, w] of this.reads) {
      if (w.index !== null && w.index <= this.applied) {
        this.reads.delete(context);
        clearTimeout(w.timer);
        w.resolve(undefined);
      }
    }
    for (const w of this.conditions) {
      if (w.check()) {
        this.conditions.delete(w);
        clearTimeout(w.timer);
        w.resolve(undefined);
      }
    }
  }

  private failPending(seq: number, err: Error): void {
    const p = this.pending.get(seq);
    if (p === undefined) return;
    this.pending.delete(seq);
    p.reject(err);
  }

  /**
   * Fails the proposals whose deadline has passed, on each tick: one sweep instead of a timer per
   * proposal (arming and clearing one cost ~2.6 µs of each write). `pending` is in proposal
   * order, and every proposal gets the same timeout, so the expired ones are at its front.
   */
  private expireProposals(now: number): void {
    for (const [seq, p] of this.pending) {
      if (p.deadline > now) break;
      this.failPending(
        seq,
        new RaftNodeError("TIMEOUT", `Proposal not applied within ${this.o.proposalTimeoutMs} ms`),
      );
    }
  }

  private failRead(context: string, err: Error): void {
    const w = this.reads.get(context);
    if (w === undefined) return;
    this.reads.delete(context);
    clearTimeout(w.timer);
    w.reject(err);
  }

  private failAll(err: Error): void {
    for (const seq of [...this.pending.keys()]) this.failPending(seq, err);
    for (const context of [...this.reads.keys()]) this.failRead(context, err);
    for (const w of this.conditions) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.conditions.clear();
    for (const task of this.loopTasks.splice(0)) task.done(err);
  }
}
