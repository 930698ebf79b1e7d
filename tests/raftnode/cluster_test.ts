/**
 * Multi-process tests of the durable Raft node: real host processes on loopback, kill -9,
 * restarts, corrupt logs, membership changes under load.
 *
 *   deno test -A tests/raftnode/
 */

import assert from "node:assert/strict";
import { encodeMessages } from "../../src/raftnode/transport/message_codec.ts";
import { Cluster, type Member, sleep } from "./cluster.ts";
import {
  overwriteAt as overwrite,
  segmentDataEnd as dataEnd,
} from "../../src/raftnode/storage/testing.ts";

const sanitize = { sanitizeOps: false, sanitizeResources: false };

/** Concurrent writers of unique keys; remembers which writes were acknowledged. */
class Writers {
  readonly acked = new Set<string>();
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private n = 0;

  constructor(private readonly cluster: Cluster, concurrency: number, prefix: string) {
    for (let w = 0; w < concurrency; w++) {
      this.loops.push((async () => {
        while (this.running) {
          const key = `${prefix}-${w}-${this.n++}`;
          if (await this.cluster.put(key, "v", 4000)) this.acked.add(key);
        }
      })());
    }
  }

  /** Waits until at least `count` writes were acknowledged. */
  async until(count: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.acked.size < count) {
      if (Date.now() > deadline) {
        throw new Error(`only ${this.acked.size} of ${count} writes acked`);
      }
      await sleep(20);
    }
  }

  /** Stops writing and waits for the writers; safe to call twice. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

/** Every acknowledged key is present on every given member, once they all caught up. */
async function assertAllPresent(cluster: Cluster, keys: Iterable<string>, members: Member[]) {
  const leader = await cluster.waitLeader(5000, members);
  const { commitIndex } = await leader.status();
  await cluster.waitApplied(commitIndex, 15_000, members);
  for (const m of members) {
    const { kv } = await m.dump();
    const missing = [...keys].filter((k) => kv[k] === undefined);
    assert.deepEqual(missing.slice(0, 10), [], `${m.id} lost ${missing.length} acknowledged keys`);
  }
}

/** Waits until the member's log file (its stderr) matches `pattern`. */
async function waitForLog(m: Member, pattern: RegExp, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(await Deno.readTextFile(`${m.dataDir}.log`))) {
    if (Date.now() > deadline) throw new Error(`${m.id}'s log never matched ${pattern}`);
    await sleep(50);
  }
}

async function admin(cluster: Cluster, op: string, body: unknown): Promise<void> {
  const deadline = Date.now() + 20_000;
  let lastError = "";
  while (Date.now() < deadline) {
    const leader = await cluster.waitLeader(5000);
    const r = await leader.post(`/members/${op}`, body, 15_000).catch((e) => ({
      status: 0,
      body: { error: { message: String(e) } },
    }));
    if (r.status === 200) return;
    lastError = JSON.stringify(r.body);
    await sleep(100);
  }
  throw new Error(`${op} ${JSON.stringify(body)} failed: ${lastError}`);
}

Deno.test({
  name: "raftnode: 3 members elect and commit; kill -9 of the leader elects another within 2 s, " +
    "nothing committed is lost, and the old leader catches up",
  ...sanitize,
  fn: async () => {
    const cluster = await Cluster.create(["a", "b", "c"]);
    try {
      await cluster.startAll();
      const leader = await cluster.waitLeader(5000);
      const keys: string[] = [];
      for (let i = 0; i < 30; i++) {
        keys.push(`k${i}`);
        assert.ok(await cluster.put(`k${i}`, String(i)));
      }
      await leader.kill9();
      const killedAt = performance.now();
      const next = await cluster.waitLeader(5000);
      const electionMs = performance.now() - killedAt;
      assert.notEqual(next.id, leader.id);
      assert.ok(electionMs < 2000, `new leader after ${electionMs.toFixed(0)} ms`);
      for (let i = 30; i < 60; i++) {
        keys.push(`k${i}`);
        assert.ok(await cluster.put(`k${i}`, String(i)));
      }
      await leader.start();
      await assertAllPresent(cluster, keys, cluster.running());
      // Linearizable read through a follower.
      const follower = cluster.running().find((m) => m.id !== next.id)!;
      const res = await fetch(`${follower.url}/read?key=k59`);
      assert.deepEqual(await res.json(), { value: "59" });
    } finally {
      await cluster.destroy();
    }
  },
});

Deno.test({
  name: "raftnode: kill -9 of the leader: the survivors see its streams close and elect a new " +
    "leader sooner than their leases alone allow",
  ...sanitize,
  fn: async () => {
    // Without the disconnect report a follower refuses votes for 10 ticks (500 ms) after the
    // last heartbeat, which came at most one tick before the kill: no election beats 450 ms.
    // With it, only the randomised 0–9 ticks remain; the fastest of five kills shows that.
    const cluster = await Cluster.create(["a", "b", "c"]);
    try {
      await cluster.startAll();
      const times: number[] = [];
      for (let k = 0; k < 5; k++) {
        const leader = await cluster.waitLeader(5000);
        assert.ok(await cluster.put(`k${k}`, String(k)));
        await sleep(200);
        await leader.kill9();
        const killedAt = performance.now();
        const next = await cluster.waitLeader(5000);
        times.push(Math.round(performance.now() - killedAt));
        assert.notEqual(next.id, leader.id);
        await leader.start();
        await assertAllPresent(cluster, [`k${k}`], cluster.running());
      }
      assert.ok(Math.min(...times) < 400, `new leaders after ${times.join(", ")} ms`);
    } finally {
      await cluster.destroy();
    }
  },
});

Deno.test({
  name: "raftnode: kill -9 of a random member at a random instant, 20 times during heavy " +
    "writes: every acknowledged proposal is present afterwards",
  ...sanitize,
  fn: async () => {
    const cluster = await Cluster.create(["a", "b", "c"], {
      snapshotEntries: 300,
      compactKeep: 50,
    });
    let writers: Writers | undefined;
    try {
      await cluster.startAll();
      await cluster.waitLeader(5000);
      writers = new Writers(cluster, 8, "w");
      for (let round = 0; round < 20; round++) {
        await sleep(50 + Math.random() * 200);
        const all = [...cluster.members.values()];
        const victim = all[Math.floor(Math.random() * all.length)];
        await victim.kill9();
        await sleep(50 + Math.random() * 150);
        await victim.start();
      }
      await writers.until(writers.acked.size + 50);
      await writers.stop();
      await assertAllPresent(cluster, writers.acked, cluster.running());
    } finally {
      await writers?.stop();
      await cluster.destroy();
    }
  },
});

Deno.test({
  name: "raftnode: a follower down while the leader compacted past it, and a member joining " +
    "afterwards, catch up by snapshot",
  ...sanitize,
  fn: async () => {
    const cluster = await Cluster.create(["a", "b", "c"], {
      snapshotEntries: 100,
      compactKeep: 10,
    });
    try {
      await cluster.startAll();
      const leader = await cluster.waitLeader(5000);
      const follower = cluster.running().find((m) => m.id !== leader.id)!;
      assert.ok(await cluster.put("before", "1"));
      await follower.kill9();
      const keys: string[] = [];
      await Promise.all(Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 40; i++) {
          const k = `s-${w}-${i}`;
          assert.ok(await cluster.put(k, "x"));
          keys.push(k);
        }
      }));
      const s = await (await cluster.waitLeader(5000)).status();
      assert.ok(s.snapshotIndex > 100, `leader snapshot at ${s.snapshotIndex}`);
      await follower.start();
      await assertAllPresent(cluster, [...keys, "before"], cluster.running());
      const fs = await follower.status();
      assert.ok(fs.snapshotIndex > 100, `follower restored snapshot ${fs.snapshotIndex}`);
      await waitForLog(follower, /installed snapshot [1-9][0-9]{2,}\//);
      // A member joining now starts empty and also catches up from a snapshot.
      const d = cluster.add("d");
      await d.start(cluster.peers(), true);
      await admin(cluster, "add-learner", { id: "d", url: d.url });
      await admin(cluster, "promote", { id: "d" });
      await assertAllPresent(cluster, [...keys, "before"], cluster.running());
      // A real snapshot (index ≥ 100), not the founding one at index 1.
      await waitForLog(d, /installed snapshot [1-9][0-9]{2,}\//);
      const voters = (await d.status()).members.filter((m) => m.voter).map((m) => m.id).sort();
      assert.deepEqual(voters, ["a", "b", "c", "d"]);
    } finally {
      await cluster.destroy();
    }
  },
});

Deno.test({
  name: "raftnode: membership under load: grow 3 → 5, shrink 5 → 3, replace a member, " +
    "transfer leadership; nothing acknowledged is lost",
  ...sanitize,
  fn: async () => {
    const cluster = await Cluster.create(["a", "b", "c"]);
    let writers: Writers | undefined;
    try {
      await cluster.startAll();
      await cluster.waitLeader(5000);
      writers = new Writers(cluster, 4, "m");
      for (const id of ["d", "e"]) {
        const m = cluster.add(id);
        await m.start(cluster.peers(), true);
        await admin(cluster, "add-learner", { id, url: m.url });
        await admin(cluster, "promote", { id });
      }
      let s = await (await cluster.waitLeader()).status();
      assert.deepEqual(s.members.filter((m) => m.voter).map((m) => m.id).sort(), [
        "a",
        "b",
        "c",
        "d",
        "e",
      ]);
      const target = s.leader === "b" ? "d" : "b";
      await admin(cluster, "transfer", { id: target });
      assert.equal((await cluster.waitLeader()).id, target);
      for (const id of ["a", "c"].filter((x) => x !== target)) {
        await admin(cluster, "remove", { id });
        await cluster.get(id).kill9();
      }
      // Replace e by f.
      const f = cluster.add("f");
      await f.start(cluster.peers(), true);
      await admin(cluster, "add-learner", { id: "f", url: f.url });
      await admin(cluster, "promote", { id: "f" });
      await admin(cluster, "remove", { id: "e" });
      await cluster.get("e").kill9();
      await writers.until(writers.acked.size + 50);
      await writers.stop();
      s = await (await cluster.waitLeader()).status();
      const voters = s.members.filter((m) => m.voter).map((m) => m.id).sort();
      assert.equal(voters.length, 3, `voters ${voters}`);
      assert.ok(voters.includes("f"));
      await assertAllPresent(cluster, writers.acked, cluster.running());
    } finally {
      await writers?.stop();
      await cluster.destroy();
    }
  },
});

Deno.test({
  name: "raftnode: with the SQLite log store, members commit, survive kill -9 and restart",
  ...sanitize,
  fn: async () => {
    const cluster = await Cluster.create(["a", "b", "c"], { storage: "sqlite" });
    let writers: Writers | undefined;
    try {
      await cluster.startAll();
      writers = new Writers(cluster, 4, "q");
      await writers.until(50);
      const leader = await cluster.waitLeader(5000);
      await leader.kill9();
      await writers.until(100);
      await leader.start();
      await writers.until(150);
      await writers.stop();
      await assertAllPresent(cluster, writers.acked, cluster.running());
      assert.ok((await Deno.stat(`${leader.dataDir}/log.db`)).isFile);
    } finally {
      await writers?.stop();
      await cluster.destroy();
    }
  },
});

function newestSegment(dataDir: string): string {
  const names = [...Deno.readDirSync(`${dataDir}/wal`)].map((e) => e.name).filter((n) =>
    n.endsWith(".wal")
  ).sort();
  return `${dataDir}/wal/${names[names.length - 1]}`;
}

Deno.test({
  name: "raftnode: a truncated or garbled log tail is detected and recovered at start",
  ...sanitize,
  fn: async () => {
    const cluster = await Cluster.create(["a", "b", "c"]);
    try {
      await cluster.startAll();
      const leader = await cluster.waitLeader(5000);
      const keys: string[] = [];
      const write = async (from: number, to: number) => {
        for (let i = from; i < to; i++) {
          keys.push(`t${i}`);
          assert.ok(await cluster.put(`t${i}`, "x"), `t${i} not acknowledged`);
        }
      };
      await write(0, 30);
      // 1. A crash in the middle of an append: a follower's newest segment ends with a record
      //    whose header promises more bytes than were written, then one that fails its checksum.
      const torn = cluster.running().find((m) => m.id !== leader.id)!;
      await torn.kill9();
      const frame = new Uint8Array(8 + 40);
      new DataView(frame.buffer).setUint32(0, 40, true);
      new DataView(frame.buffer).setUint32(4, 12345, true);
      frame.fill(7, 8);
      const tornPath = newestSegment(torn.dataDir);
      const end = await dataEnd(tornPath);
      await overwrite(tornPath, end, frame);
      await overwrite(tornPath, end + frame.length, new Uint8Array([200, 0, 0, 0, 1, 2]));
      await torn.start();
      await write(30, 40);
      await waitForLog(torn, /torn or corrupt tail/);
      // 2. The whole cluster stops; one member's tail is cut mid-record, another's last record
      //    is garbled. Both recover by truncating and catch up from the others.
      const { commitIndex } = await leader.status().catch(() =>
        cluster.waitLeader().then((l) => l.status())
      );
      await cluster.waitApplied(commitIndex);
      const [cut, garbled] = [...cluster.members.values()].filter((m) => m.id !== torn.id);
      for (const m of cluster.members.values()) await m.kill9();
      // The cut record's last 37 bytes never reached the disk: zeros, as preallocated.
      const cutPath = newestSegment(cut.dataDir);
      await overwrite(cutPath, (await dataEnd(cutPath)) - 37, new Uint8Array(37));
      const gPath = newestSegment(garbled.dataDir);
      const buf = await Deno.readFile(gPath);
      const gAt = (await dataEnd(gPath)) - 30;
      await overwrite(gPath, gAt, new Uint8Array([buf[gAt] ^ 0x5a]));
      await Promise.all([...cluster.members.values()].map((m) => m.start()));
      await write(40, 60);
      await assertAllPresent(cluster, keys, cluster.running());
      for (const m of [cut, garbled]) await waitForLog(m, /torn or corrupt tail/);
    } finally {
      await cluster.destroy();
    }
  },
});

Deno.test({
  name: "raftnode: peer requests without the cluster secret get 401 and change nothing",
  ...sanitize,
  fn: async () => {
    const cluster = await Cluster.create(["a", "b", "c"]);
    try {
      await cluster.startAll();
      const leader = await cluster.waitLeader(5000);
      assert.ok(await cluster.put("x", "1"));
      const follower = cluster.running().find((m) => m.id !== leader.id)!;
      const before = await follower.status();
      const forged = encodeMessages([
        {
          type: "MsgVote",
          from: "evil",
          to: follower.id,
          term: 1000,
          index: 10 ** 6,
          logTerm: 999,
        },
        { type: "MsgHeartbeat", from: "evil", to: follower.id, term: 1000, commit: 10 ** 6 },
      ]);
      for (const secret of [null, "wrong", ""]) {
        const headers: Record<string, string> = secret === null
          ? {}
          : { "x-ctl-cluster-secret": secret };
        for (const route of ["/raft/msgs", "/raft/snap"]) {
          const res = await fetch(`${follower.url}${route}`, {
            method: "POST",
            headers,
            body: forged,
          });
          assert.equal(res.status, 401);
          await res.body?.cancel();
        }
      }
      await sleep(300);
      const after = await follower.status();
      assert.equal(after.term, before.term);
      assert.equal(after.leader, leader.id);
      assert.equal((await cluster.waitLeader()).id, leader.id);
    } finally {
      await cluster.destroy();
    }
  },
});
