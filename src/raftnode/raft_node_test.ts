/**
 * RaftNode in one process: three members, each with its own Deno.serve on an ephemeral port,
 * real segment logs in temporary directories. Multi-process crash tests are in tests/raftnode/.
 */

import assert from "node:assert/strict";
import type { NodeId } from "../../raft/types.ts";
import { NotLeaderError, RaftNodeError } from "./errors.ts";
import { RaftNode, type RaftNodeOptions } from "./raft_node.ts";
import type { StateMachine, StateMachineEntry } from "./state_machine.ts";
import type { LogStore } from "./storage/types.ts";

/** A counter; its "durable" state lives in a shared object so a restart sees what was applied. */
class CounterMachine implements StateMachine {
  /** The `local` of each entry that carried one, with its index (in memory only). */
  readonly locals: [number, unknown][] = [];
  /** When set, applying a batch that adds this value takes `slowApplyMs` (without blocking). */
  slowValue: number | null = null;
  slowApplyMs = 0;
  /** Entries offered to `speculate`: index, term, local, and the applied index at the offer. */
  readonly speculated: [number, number, unknown, number][] = [];
  abandoned = 0;
  /** Each applied entry's index and term. */
  readonly appliedTerms: [number, number][] = [];
  constructor(readonly disk: { applied: number; total: number; appliedIndexes: number[] }) {}
  speculate(e: StateMachineEntry): void {
    this.speculated.push([e.index, e.term, e.local, this.disk.applied]);
  }
  abandonSpeculation(): void {
    this.abandoned++;
  }
  apply(entries: readonly StateMachineEntry[]): unknown[] | Promise<unknown[]> {
    const results = this.applyNow(entries);
    const slow = this.slowValue !== null &&
      entries.some((e) =>
        e.kind === "app" && Number(new TextDecoder().decode(e.data)) === this.slowValue
      );
    return slow ? new Promise((r) => setTimeout(() => r(results), this.slowApplyMs)) : results;
  }
  private applyNow(entries: readonly StateMachineEntry[]): unknown[] {
    return entries.map((e) => {
      assert.ok(e.index > this.disk.applied, `entry ${e.index} applied twice`);
      this.disk.applied = e.index;
      this.disk.appliedIndexes.push(e.index);
      this.appliedTerms.push([e.index, e.term]);
      if (e.local !== undefined) this.locals.push([e.index, e.local]);
      if (e.kind !== "app") return null;
      this.disk.total += Number(new TextDecoder().decode(e.data));
      return this.disk.total;
    });
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.disk.total));
  }
  restore(data: Uint8Array, index: number): void {
    this.disk.total = JSON.parse(new TextDecoder().decode(data));
    this.disk.applied = index;
  }
  appliedIndex(): number {
    return this.disk.applied;
  }
}

/**
 * A counter whose snapshots are copied "on another thread": the state is captured at the call,
 * handed back `delayMs` later, while the node goes on applying.
 */
class SlowSnapshotCounter extends CounterMachine {
  copies = 0;
  constructor(
    disk: { applied: number; total: number; appliedIndexes: number[] },
    readonly delayMs: number,
  ) {
    super(disk);
  }
  async snapshotConcurrently(): Promise<{ index: number; data: Uint8Array }> {
    const taken = { index: this.disk.applied, data: this.snapshot() };
    this.copies++;
    await new Promise((r) => setTimeout(r, this.delayMs));
    return taken;
  }
}

/** A counter whose snapshot copies always fail (a full disk, say). */
/** A counter that copies its state to a file (`snapshotToFile`), `delayMs` after the call. */
class FileSnapshotCounter extends CounterMachine {
  copies = 0;
  constructor(
    disk: { applied: number; total: number; appliedIndexes: number[] },
    readonly delayMs: number,
  ) {
    super(disk);
  }
  async snapshotToFile(path: string): Promise<{ index: number }> {
    const index = this.disk.applied;
    const data = this.snapshot();
    this.copies++;
    await new Promise((r) => setTimeout(r, this.delayMs));
    await Deno.writeFile(path, data, { createNew: true });
    return { index };
  }
}

class FailingSnapshotCounter extends SlowSnapshotCounter {
  override async snapshotConcurrently(): Promise<{ index: number; data: Uint8Array }> {
    this.copies++;
    await new Promise((r) => setTimeout(r, this.delayMs));
    throw new Error("no space left on device");
  }
}

/**
 * Counts appends that reach the log store (one append = one fsync) and snapshot reads, records
 * which appends the caller waited for on its own thread (`appendWaiting`), and can make those
 * fsyncs outlast the wait (a busy disk).
 */
class CountingLog implements LogStore {
  appends = 0;
  snapshotReads = 0;
  /** Per append: whether it came through `appendWaiting`. */
  readonly waited: boolean[] = [];
  /** From 1: `appendWaiting` returns a promise, durable this much later. */
  slowFsyncMs = 0;
  /** `appendWaiting` appends whose slow fsync is still running. */
  slowFsyncsRunning = 0;
  constructor(private readonly inner: LogStore) {}
  get kind() {
    return this.inner.kind;
  }
  load() {
    return this.inner.load();
  }
  append(...args: Parameters<LogStore["append"]>) {
    this.appends++;
    this.waited.push(false);
    return this.inner.append(...args);
  }
  appendWaiting(
    ...[entries, hardState, waitMs]: Parameters<NonNullable<LogStore["appendWaiting"]>>
  ) {
    this.appends++;
    this.waited.push(true);
    if (this.slowFsyncMs <= 0) return this.inner.appendWaiting!(entries, hardState, waitMs);
    const slowMs = this.slowFsyncMs;
    this.slowFsyncsRunning++;
    return (async () => {
      try {
        await new Promise((r) => setTimeout(r, slowMs));
        await this.inner.append(entries, hardState);
      } finally {
        this.slowFsyncsRunning--;
      }
    })();
  }
  saveSnapshot(...args: Parameters<LogStore["saveSnapshot"]>) {
    return this.inner.saveSnapshot(...args);
  }
  saveSnapshotFromFile(...args: Parameters<LogStore["saveSnapshotFromFile"]>) {
    return this.inner.saveSnapshotFromFile(...args);
  }
  installSnapshot(...args: Parameters<LogStore["installSnapshot"]>) {
    return this.inner.installSnapshot(...args);
  }
  loadSnapshotData(index: number) {
    this.snapshotReads++;
    return this.inner.loadSnapshotData(index);
  }
  compact(index: number) {
    return this.inner.compact(index);
  }
  close() {
    return this.inner.close();
  }
}

interface Member {
  id: NodeId;
  node: RaftNode | null;
  server: Deno.HttpServer<Deno.NetAddr>;
  disk: { applied: number; total: number; appliedIndexes: number[] };
  log: CountingLog | null;
  sm?: CounterMachine;
}

class LocalCluster {
  readonly members = new Map<NodeId, Member>();
  peers: Record<NodeId, string> = {};
  /** When set, members snapshot off their loop, each copy taking this long. */
  slowSnapshotMs: number | null = null;
  /** With `slowSnapshotMs`: every copy fails. */
  failSnapshots = false;
  /** With `slowSnapshotMs`: members copy their state to a file (`snapshotToFile`). */
  fileSnapshots = false;
  /** Peer streams the members' HTTP servers took (none when every member has a peer port). */
  httpStreams = 0;
  constructor(readonly root: string, readonly extra: Partial<RaftNodeOptions>) {}

  static async start(
    ids: NodeId[],
    extra: Partial<RaftNodeOptions> = {},
    slowSnapshotMs: number | null = null,
    snapshots: "in memory" | "failing" | "to a file" = "in memory",
  ): Promise<LocalCluster> {
    const c = new LocalCluster(await Deno.makeTempDir({ prefix: "ctl-raftnode-" }), extra);
    c.slowSnapshotMs = slowSnapshotMs;
    c.failSnapshots = snapshots === "failing";
    c.fileSnapshots = snapshots === "to a file";
    for (const id of ids) {
      const member: Member = {
        id,
        node: null,
        disk: { applied: 0, total: 0, appliedIndexes: [] },
        log: null,
        server: Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
          if (new URL(req.url).pathname === "/raft/stream") c.httpStreams++;
          const node = c.members.get(id)?.node;
          return node ? node.handler(req) : Promise.resolve(new Response(null, { status: 503 }));
        }),
      };
      c.members.set(id, member);
      c.peers[id] = `http://127.0.0.1:${member.server.addr.port}`;
    }
    await Promise.all(ids.map((id) => c.boot(id, c.peers)));
    return c;
  }

  async boot(id: NodeId, peers?: Record<NodeId, string>): Promise<RaftNode> {
    const m = this.members.get(id)!;
    m.node = await RaftNode.start({
      id,
      dataDir: `${this.root}/${id}`,
      stateMachine: this.slowSnapshotMs === null
        ? (m.sm = new CounterMachine(m.disk))
        : (m.sm = this.fileSnapshots
          ? new FileSnapshotCounter(m.disk, this.slowSnapshotMs)
          : this.failSnapshots
          ? new FailingSnapshotCounter(m.disk, this.slowSnapshotMs)
          : new SlowSnapshotCounter(m.disk, this.slowSnapshotMs)),
      secret: "s",
      peers,
      tickMs: 20,
      wrapLogStore: (log) => (m.log = new CountingLog(log)),
      ...this.extra,
    });
    return m.node;
  }

  /** Stops one member that is not `leader`, as if it went away; returns it (restart: `boot`). */
  async stopAFollower(leader: RaftNode): Promise<Member> {
    const m = [...this.members.values()].find((x) => x.id !== leader.id)!;
    await m.node!.stop();
    m.node = null;
    return m;
  }

  /**
   * Stops every member and starts them again from their data directories alone; with
   * `wipeState` the counters' own state goes too, so it must come back from the snapshots.
   */
  async restartAll(options: { wipeState?: boolean } = {}): Promise<RaftNode> {
    for (const m of this.members.values()) await m.node!.stop();
    for (const m of this.members.values()) m.node = null;
    if (options.wipeState) {
      for (const m of this.members.values()) m.disk = { applied: 0, total: 0, appliedIndexes: [] };
    }
    await Promise.all([...this.members.keys()].map((id) => this.boot(id)));
    return await this.leader();
  }

  async leader(timeoutMs = 5000): Promise<RaftNode> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const m of this.members.values()) {
        if (m.node?.status().role === "leader") return m.node;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no leader");
  }

  async close(): Promise<void> {
    // Every node first: their outbound streams end, so every server can then shut down.
    for (const m of this.members.values()) await m.node?.stop();
    for (const m of this.members.values()) await m.server.shutdown();
    await Deno.remove(this.root, { recursive: true });
  }
}

const enc = (n: number) => new TextEncoder().encode(String(n));

/** The two ways members take peer streams: on the HTTP server, or on a peer port of their own. */
const TRANSPORTS: [string, Partial<RaftNodeOptions>][] = [
  ["http", {}],
  ["peer port", { peerListen: { hostname: "127.0.0.1", port: 0 } }],
];

/** Waits up to 10 s for `ok()`, checking every 20 ms. */
async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const [transport, viaOptions] of TRANSPORTS) {
  Deno.test(`RaftNode: propose resolves after commit and apply, with the apply result (${transport})`, async () => {
    const c = await LocalCluster.start(["a", "b", "c"], viaOptions);
    try {
      const leader = await c.leader();
      assert.equal(await leader.propose(enc(5)), 5);
      assert.equal(await leader.propose(enc(7)), 12);
      const s = leader.status();
      assert.equal(s.role, "leader");
      assert.equal(s.leader, leader.id);
      assert.ok(s.appliedIndex >= 2 && s.commitIndex >= s.appliedIndex);
      assert.deepEqual(s.members.map((m) => [m.id, m.voter]).sort(), [
        ["a", true],
        ["b", true],
        ["c", true],
      ]);
      assert.ok(s.members.every((m) => m.matchIndex > 0 && m.url !== null));
    } finally {
      await c.close();
    }
  });
}

for (const [transport, viaOptions] of TRANSPORTS) {
  Deno.test(`RaftNode: followers keep their leader and the term holds while peer streams are replaced (${transport})`, async () => {
    // Streams replaced every 100 ms against a 200 ms lease (10 ticks of 20 ms): a replaced
    // stream taken for its sender's death would cost the followers their leader, and, both
    // losing it at once, an election.
    const c = await LocalCluster.start(["a", "b", "c"], {
      ...viaOptions,
      peerStreamMaxAgeMs: 100,
    });
    try {
      const leader = await c.leader();
      assert.equal(await leader.propose(enc(1)), 1);
      const term = leader.status().term;
      const followers = [...c.members.values()].map((m) => m.node!).filter((n) => n !== leader);
      let lost = 0;
      const end = Date.now() + 1500;
      while (Date.now() < end) {
        for (const f of followers) if (f.status().leader !== leader.id) lost++;
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.equal(lost, 0, "a follower lost its leader");
      assert.equal(leader.status().role, "leader");
      assert.equal(leader.status().term, term);
    } finally {
      await c.close();
    }
  });
}

Deno.test("RaftNode: a proposal's local value reaches only the proposer's state machine", async () => {
  const c = await LocalCluster.start(["a", "b", "c"]);
  try {
    const leader = await c.leader();
    const marker = { built: "by the leader" };
    assert.equal(await leader.propose(enc(4), marker), 4);
    assert.equal(await leader.propose(enc(1)), 5);
    const members = [...c.members.values()];
    const deadline = Date.now() + 5000;
    while (members.some((m) => m.disk.total !== 5) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const m of members) {
      assert.equal(m.disk.total, 5);
      const locals = m.sm!.locals;
      if (m.id === leader.id) {
        assert.equal(locals.length, 1);
        assert.equal(locals[0][1], marker); // the very object, not a copy
      } else {
        assert.deepEqual(locals, []);
      }
    }
  } finally {
    await c.close();
  }
});

Deno.test("RaftNode: a follower fails fast with NotLeader naming the leader", async () => {
  const c = await LocalCluster.start(["a", "b", "c"]);
  try {
    const leader = await c.leader();
    await leader.propose(enc(1));
    const follower = [...c.members.values()].find((m) => m.id !== leader.id)!.node!;
    assert.ok(leader.isLeader() && !follower.isLeader());
    assert.equal(follower.leaderUrl(), c.peers[leader.id]);
    await assert.rejects(
      () => follower.propose(enc(1)),
      (e) => e instanceof NotLeaderError && e.code === "NOT_LEADER" && e.leaderId === leader.id,
    );
    // A linearizable read on the follower sees the leader's write once it resolves.
    await follower.readIndex();
    assert.ok(follower.status().appliedIndex >= leader.status().appliedIndex - 0);
  } finally {
    await c.close();
  }
});

Deno.test("RaftNode: concurrent proposals share fsyncs (group commit)", async () => {
  const c = await LocalCluster.start(["a", "b", "c"]);
  try {
    const leader = await c.leader();
    await leader.propose(enc(0));
    const log = c.members.get(leader.id)!.log!;
    const before = log.appends;
    const results = await Promise.all(Array.from({ length: 500 }, () => leader.propose(enc(1))));
    const appends = log.appends - before;
    assert.equal(Math.max(...(results as number[])), 500);
    assert.ok(appends < 100, `500 proposals took ${appends} appends`);
  } finally {
    await c.close();
  }
});

for (const [transport, viaOptions] of TRANSPORTS) {
  Deno.test(`RaftNode: restart from the data directory alone applies nothing twice (${transport})`, async () => {
    const c = await LocalCluster.start(["a", "b", "c"], {
      ...viaOptions,
      snapshotEntries: 50,
      compactKeepEntries: 5,
    });
    try {
      let leader = await c.leader();
      for (let i = 0; i < 120; i++) await leader.propose(enc(1));
      // Stop everyone, restart from the directories only (no peers given).
      leader = await c.restartAll();
      assert.equal(await leader.propose(enc(1)), 121);
      for (const m of c.members.values()) {
        const sorted = [...m.disk.appliedIndexes].sort((a, b) => a - b);
        assert.deepEqual(m.disk.appliedIndexes, sorted, `${m.id} applied out of order`);
        assert.equal(new Set(sorted).size, sorted.length, `${m.id} applied an entry twice`);
      }
    } finally {
      await c.close();
    }
  });
}

Deno.test("RaftNode: snapshots copied off the loop pair each state with its index", async () => {
  // Each copy takes 40 ms while proposals go on being applied: the snapshot must be recorded at
  // the index its state was taken at, not at the applied index when the copy comes back.
  const c = await LocalCluster.start(["a", "b", "c"], {
    snapshotEntries: 30,
    compactKeepEntries: 5,
  }, 40);
  try {
    let leader = await c.leader();
    for (let i = 0; i < 100; i++) await leader.propose(enc(1));
    // One member misses a long run: the others compact past it, so it must install a snapshot.
    const behind = await c.stopAFollower(leader);
    for (let i = 0; i < 200; i++) {
      await leader.propose(enc(1));
      if (i % 20 === 0) await Promise.all(Array.from({ length: 20 }, () => leader.propose(enc(1))));
    }
    const expected = 100 + 200 + 10 * 20;
    const converged = async (m: Member) => {
      const deadline = Date.now() + 10_000;
      while (m.disk.total !== expected && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(m.disk.total, expected, `${m.id}'s state`);
    };
    for (const m of c.members.values()) {
      if (m.node === null) continue;
      await converged(m);
      assert.ok(m.node.status().snapshotIndex > 0, `${m.id} took no snapshot`);
    }
    await c.boot(behind.id);
    await converged(behind);
    assert.ok(behind.node!.status().snapshotIndex > 100, "it installed a snapshot");
    // A restart of everyone restores from the snapshots taken off the loop.
    leader = await c.restartAll({ wipeState: true });
    assert.equal(await leader.propose(enc(1)), expected + 1);
  } finally {
    await c.close();
  }
});

for (const [transport, viaOptions] of TRANSPORTS) {
  Deno.test(`RaftNode: snapshot data stays in memory only while a follower needs it, and is read back to catch one up (${transport})`, async () => {
    const c = await LocalCluster.start(["a", "b", "c"], {
      ...viaOptions,
      snapshotEntries: 30,
      compactKeepEntries: 5,
      snapshotKeepMs: 300,
    });
    try {
      const leader = await c.leader();
      const behind = await c.stopAFollower(leader);
      for (let i = 0; i < 100; i++) await leader.propose(enc(1));
      const live = [...c.members.values()].filter((m) => m.node !== null);
      await until(
        "the live members to snapshot and let the data go",
        () =>
          live.every((m) =>
            m.node!.status().snapshotIndex >= 90 && !m.node!.status().snapshotInMemory
          ),
      );
      const leaderLog = c.members.get(leader.id)!.log!;
      assert.equal(leaderLog.snapshotReads, 0, "nobody needed it yet");

      await c.boot(behind.id);
      await until("the member that was away to catch up", () => behind.disk.total === 100);
      assert.ok(behind.node!.status().snapshotIndex >= 90, "it installed the leader's snapshot");
      assert.ok(leaderLog.snapshotReads >= 1, "the leader read the snapshot back from disk");
      assert.equal(await leader.propose(enc(1)), 101, "and writes go on");
      await until(
        "every member to let the data go again",
        () => [...c.members.values()].every((m) => !m.node!.status().snapshotInMemory),
      );
    } finally {
      await c.close();
    }
  });
}

Deno.test("RaftNode: a snapshot whose file is gone is read again only after a pause, and writes go on", async () => {
  const c = await LocalCluster.start(["a", "b", "c"], {
    snapshotEntries: 30,
    compactKeepEntries: 5,
    snapshotKeepMs: 0,
  });
  try {
    const leader = await c.leader();
    const behind = await c.stopAFollower(leader);
    for (let i = 0; i < 100; i++) await leader.propose(enc(1));
    await until(
      "the leader to snapshot and let the data go",
      () => leader.status().snapshotIndex >= 90 && !leader.status().snapshotInMemory,
    );
    const snapDir = `${c.root}/${leader.id}/snap`;
    for (const e of Deno.readDirSync(snapDir)) Deno.removeSync(`${snapDir}/${e.name}`);
    await c.boot(behind.id);
    const log = c.members.get(leader.id)!.log!;
    await until("the leader to try to read the snapshot back", () => log.snapshotReads >= 1);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(log.snapshotReads, 1, "no second read within the pause (ticks are 20 ms)");
    assert.equal(leader.status().role, "leader");
    assert.equal(await leader.propose(enc(1)), 101, "writes go on");
  } finally {
    await c.close();
  }
});

Deno.test("RaftNode: a state copied to a file becomes a snapshot that never enters memory, and still catches a member up", async () => {
  // snapshotKeepMs is long: data held after being taken would still be in memory at the end.
  const c = await LocalCluster.start(
    ["a", "b", "c"],
    {
      snapshotEntries: 30,
      compactKeepEntries: 5,
      snapshotKeepMs: 60_000,
    },
    20,
    "to a file",
  );
  try {
    let leader = await c.leader();
    const behind = await c.stopAFollower(leader);
    for (let i = 0; i < 150; i++) await leader.propose(enc(1));
    const live = [...c.members.values()].filter((m) => m.node !== null);
    await until(
      "the live members to snapshot",
      () => live.every((m) => m.node!.status().snapshotIndex >= 120),
    );
    for (const m of live) {
      assert.ok((m.sm as FileSnapshotCounter).copies >= 1, `${m.id} copied to a file`);
      assert.equal(m.node!.status().snapshotInMemory, false, `${m.id} holds no snapshot data`);
    }
    await c.boot(behind.id);
    await until("the member that was away to catch up", () => behind.disk.total === 150);
    assert.ok(behind.node!.status().snapshotIndex >= 120, "it installed the leader's snapshot");
    assert.ok(c.members.get(leader.id)!.log!.snapshotReads >= 1, "read back to be sent");
    // Everyone restarts from the snapshot files alone (the counters' own state is wiped).
    leader = await c.restartAll({ wipeState: true });
    assert.equal(await leader.propose(enc(1)), 151);
  } finally {
    await c.close();
  }
});

Deno.test("RaftNode: a failing snapshot copy is retried after a pause, not on every Ready", async () => {
  const c = await LocalCluster.start(["a", "b", "c"], { snapshotEntries: 20 }, 5, "failing");
  try {
    const leader = await c.leader();
    for (let i = 0; i < 150; i++) await leader.propose(enc(1));
    // Writes go on; each member tried once (the retry waits 10 s), not after every Ready.
    assert.equal(await leader.propose(enc(1)), 151);
    for (const m of c.members.values()) {
      const copies = (m.sm as SlowSnapshotCounter).copies;
      assert.equal(copies, 1, `${m.id} copied ${copies} times`);
      const at = m.node!.status().snapshotIndex;
      assert.ok(at < 20, `${m.id} recorded no snapshot past the founding one (at ${at})`);
    }
  } finally {
    await c.close();
  }
});

Deno.test("RaftNode: oversized proposals and stopped nodes fail with stable codes", async () => {
  const c = await LocalCluster.start(["a", "b", "c"], { proposalBytesMax: 10 });
  try {
    const leader = await c.leader();
    await assert.rejects(
      () => leader.propose(new Uint8Array(11)),
      (e) => e instanceof RaftNodeError && e.code === "TOO_LARGE",
    );
    await leader.stop();
    await assert.rejects(
      () => leader.propose(enc(1)),
      (e) => e instanceof RaftNodeError && e.code === "STOPPED",
    );
  } finally {
    await c.close();
  }
});

Deno.test("RaftNode: a lone write's commit reaches followers within commitHoldMs, not at the next heartbeat", async () => {
  // Heartbeats every 400 ms: a held commit index that waited for one would take 200 ms on
  // average; the hold's own deadline sends it after 5.
  const c = await LocalCluster.start(["a", "b", "c"], {
    tickMs: 50,
    heartbeatTicks: 8,
    electionTicks: 20,
    commitHoldMs: 5,
  });
  try {
    const leader = await c.leader(10_000);
    const followers = [...c.members.values()].filter((m) => m.node !== leader);
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      await leader.propose(enc(1));
      const t0 = performance.now();
      const index = leader.status().appliedIndex;
      while (followers.some((f) => f.node!.status().appliedIndex < index)) {
        await new Promise((r) => setTimeout(r, 1));
      }
      waits.push(performance.now() - t0);
      // Not right after a heartbeat every time.
      await new Promise((r) => setTimeout(r, 37 + 53 * i));
    }
    waits.sort((x, y) => x - y);
    assert.ok(waits[2] < 100, `followers applied a lone write after ${waits.map(Math.round)} ms`);
  } finally {
    await c.close();
  }
});

Deno.test("RaftNode: a proposal that cannot commit fails with TIMEOUT after proposalTimeoutMs", async () => {
  const c = await LocalCluster.start(["a", "b", "c"], {
    tickMs: 50,
    electionTicks: 60, // the leader keeps its role well past the timeout
    proposalTimeoutMs: 300,
  });
  try {
    const leader = await c.leader(10_000);
    assert.equal(await leader.propose(enc(1)), 1);
    for (const m of c.members.values()) if (m.node !== leader) await m.node!.stop();
    const t0 = performance.now();
    const err = await leader.propose(enc(1)).then(() => null, (e) => e);
    const waited = performance.now() - t0;
    assert.ok(err instanceof RaftNodeError, `rejected with ${err}`);
    assert.equal(err.code, "TIMEOUT");
    assert.ok(waited >= 300 && waited < 700, `timed out after ${Math.round(waited)} ms`);
    assert.equal(leader.status().role, "leader");
  } finally {
    await c.close();
  }
});

Deno.test("RaftNode: a follower acknowledges an append before it applies, so a slow apply does not hold the commit", async () => {
  // Followers take 400 ms to apply the entry carrying 7. The next write's append brings them
  // its commit index (held back by commitHoldMs to ride along): a follower that applied before
  // acknowledging would hold that write's commit for the whole apply.
  const latencyOfWriteAfterSlowApply = async (followerFsyncWaitMs: number) => {
    const c = await LocalCluster.start(["a", "b", "c"], {
      tickMs: 50,
      heartbeatTicks: 8, // a heartbeat between the two writes would bring the commit index alone
      electionTicks: 20,
      commitHoldMs: 200,
      followerFsyncWaitMs,
    });
    try {
      const leader = await c.leader(10_000);
      for (const m of c.members.values()) {
        if (m.node !== leader) Object.assign(m.sm!, { slowValue: 7, slowApplyMs: 400 });
      }
      await leader.propose(enc(1));
      await leader.propose(enc(7));
      const t0 = performance.now();
      await leader.propose(enc(1));
      const waited = performance.now() - t0;
      await until(
        "followers to apply everything",
        () => [...c.members.values()].every((m) => m.disk.total === 9),
      );
      return waited;
    } finally {
      await c.close();
    }
  };
  // A wait far longer than any fsync here, even on a loaded machine: always acknowledged first.
  const first = await latencyOfWriteAfterSlowApply(5_000);
  assert.ok(first < 200, `the write after the slow apply took ${Math.round(first)} ms`);
  // Not waiting, the follower applies while its fsync runs and acknowledges after both.
  const after = await latencyOfWriteAfterSlowApply(0);
  assert.ok(after >= 350, `acknowledged after the apply, the write took ${Math.round(after)} ms`);
});

Deno.test("RaftNode: with followerFsyncWaitMs, followers wait for their fsync on the loop's thread (appendWaiting), leaders never; by default nobody does", async () => {
  for (const followerFsyncWaitMs of [1, undefined]) {
    const c = await LocalCluster.start(["a", "b", "c"], {
      tickMs: 50,
      electionTicks: 20,
      ...(followerFsyncWaitMs === undefined ? {} : { followerFsyncWaitMs }),
    });
    try {
      const leader = await c.leader(10_000);
      const members = [...c.members.values()];
      const from = members.map((m) => m.log!.waited.length);
      for (let i = 0; i < 3; i++) await leader.propose(enc(1));
      await until(
        "every member to append",
        () => members.every((m, i) => m.log!.waited.length > from[i]),
      );
      for (const [i, m] of members.entries()) {
        const waited = m.log!.waited.slice(from[i]);
        const expected = followerFsyncWaitMs !== undefined && m.node !== leader;
        assert.ok(
          waited.every((w) => w === expected),
          `${m.id} (${
            m.node === leader ? "leader" : "follower"
          }, wait ${followerFsyncWaitMs}): ${waited}`,
        );
      }
    } finally {
      await c.close();
    }
  }
});

Deno.test("RaftNode: a follower whose fsync outlasts its wait applies what is committed meanwhile", async () => {
  const c = await LocalCluster.start(["a", "b", "c"], {
    tickMs: 50,
    heartbeatTicks: 8, // no heartbeat brings the commit index alone during the test
    electionTicks: 20,
    commitHoldMs: 300, // the first write's commit index rides on the second write's append
    followerFsyncWaitMs: 1,
  });
  try {
    const leader = await c.leader(10_000);
    const follower = [...c.members.values()].find((m) => m.node !== leader)!;
    await leader.propose(enc(1));
    follower.log!.slowFsyncMs = 1_000;
    const t0 = performance.now();
    await leader.propose(enc(2)); // committed by the leader and the other follower
    await until("the follower to apply the first write", () => follower.disk.total === 1);
    const applied = performance.now() - t0;
    assert.ok(
      follower.log!.slowFsyncsRunning > 0,
      `the follower applied only after its slow fsync (${Math.round(applied)} ms)`,
    );
    assert.ok(applied < 600, `applied ${Math.round(applied)} ms after the append came`);
    follower.log!.slowFsyncMs = 0;
    await until("the follower to apply both", () => follower.disk.total === 3);
  } finally {
    await c.close();
  }
});

Deno.test("RaftNode: the leader offers a lone proposal for speculation before it commits, never a batch, and abandons it on stepping down", async () => {
  const c = await LocalCluster.start(["a", "b", "c"]);
  try {
    const leader = await c.leader();
    const sm = c.members.get(leader.id)!.sm!;
    const marker = { built: "by the leader" };
    assert.equal(await leader.propose(enc(4), marker), 4);
    assert.equal(sm.speculated.length, 1);
    const [index, term, local, appliedThen] = sm.speculated[0];
    assert.equal(local, marker, "with the proposal's own local value");
    assert.equal(appliedThen, index - 1, "offered while everything before it was applied");
    assert.ok(sm.appliedTerms.some(([i, t]) => i === index && t === term), "then applied");

    // Many proposals at once travel in one append: none is offered.
    const before = sm.speculated.length;
    await Promise.all(Array.from({ length: 20 }, (_, i) => leader.propose(enc(1), { i })));
    assert.equal(sm.speculated.length, before);
    for (const m of c.members.values()) {
      if (m.id !== leader.id) assert.deepEqual(m.sm!.speculated, [], "followers never speculate");
    }

    const next = [...c.members.keys()].find((id) => id !== leader.id)!;
    await leader.transferLeader(next);
    await until("the old leader steps down", () => leader.status().role !== "leader");
    assert.equal(sm.abandoned, 1);
  } finally {
    await c.close();
  }
});
