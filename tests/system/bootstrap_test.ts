/**
 * Snapshots, retention and bootstrap with real processes: a reflector that starts after the
 * ledger was pruned bootstraps from an executive's snapshot and converges; a snapshot with a
 * wrong checksum is refused, retried, and the reflector falls back to replaying the ledger; a
 * snapshot taken while writes continue holds exactly the data of its seq; and the Raft log of an
 * executive stays bounded under a long write run.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { gunzipSync } from "node:zlib";
import { LdbWriter } from "../../src/ldb/writer.ts";
import type { LedgerEntry } from "../../src/ledger/types.ts";
import { tableChecksums } from "../../src/sor/checksum.ts";
import { segmentDataEnd } from "../../src/raftnode/storage/testing.ts";
import {
  call,
  checksumsOf,
  Cluster,
  createAppTable,
  CtlProcess,
  ldbSeq,
  waitFor,
  WRITER,
} from "./harness.ts";

async function setUp(cluster: Cluster): Promise<string> {
  const { url } = await cluster.leader();
  // These tests write fast on purpose: lift the writer's default 1,000 rows a minute.
  await createAppTable(url, [["id", "integer"], ["v", "string"]], { fastWriter: true });
  return url;
}

/** `count` single-row ledger entries from `workers` concurrent clients; returns the last seq. */
async function writeEntries(url: string, count: number, workers = 32): Promise<number> {
  let next = 0;
  let lastSeq = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < count) {
      const k = next++;
      const res = await fetch(`${url}/families/app/mutations`, {
        method: "POST",
        headers: WRITER,
        body: JSON.stringify({
          mutations: [{ table: "rows", delete: false, values: { id: k % 5000, v: `v${k}` } }],
        }),
      });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      lastSeq = Math.max(lastSeq, body.seq);
    }
  }));
  return lastSeq;
}

/**
 * Bytes the Raft data holds: the records of each log segment (a segment is preallocated, so its
 * file size says nothing of what it holds), snapshots and the rest by file size, and not the
 * next segment's zero-filled spare.
 */
async function raftDataBytes(path: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(path)) {
    const p = `${path}/${e.name}`;
    if (e.isDirectory) total += await raftDataBytes(p);
    else if (e.name.endsWith(".wal")) total += await segmentDataEnd(p);
    else if (!e.name.endsWith(".tmp")) total += (await Deno.stat(p)).size;
  }
  return total;
}

Deno.test({
  name: "100,000 entries with a retention of 1,000: a new reflector bootstraps and converges; " +
    "the Raft log stays bounded",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ctl-bootstrap-" });
    const cluster = new Cluster(dir, 3, [
      "--ledger-retention",
      "1000",
      "--snapshot-entries",
      "5000",
    ]);
    const late = new CtlProcess("late", [
      "reflector",
      "--ldb",
      `${dir}/late/ldb.db`,
      "--executive",
      cluster.urls.join(","),
      "--bootstrap",
      `${cluster.urls[1]}/v1/snapshot`,
    ], `${dir}/late.log`);
    // Without --bootstrap: starts from seq 0, gets 410 and bootstraps from the executives.
    const plain = new CtlProcess("plain", [
      "reflector",
      "--ldb",
      `${dir}/plain/ldb.db`,
      "--executive",
      cluster.urls.join(","),
    ], `${dir}/plain.log`);
    try {
      cluster.start();
      const leader = await setUp(cluster);
      const lastSeq = await writeEntries(leader, 100_000);
      await cluster.waitLastSeq(lastSeq, 30_000);
      // The ledger's start was pruned: replay from zero is impossible, so a reflector must
      // bootstrap (wait for the pruner, which runs every second).
      // (Each executive prunes on its own timer: wait for all of them.)
      for (const url of cluster.urls) {
        await waitFor(`${url} to prune its ledger`, async () => {
          const gone = await call(url, "GET", "/v1/ledger?after=0&limit=1");
          return gone.status === 410 && gone.json.error.code === "ledger_gone";
        });
      }
      late.start();
      plain.start();
      for (const name of ["late", "plain"]) {
        await waitFor(
          `${name} to reach seq ${lastSeq}`,
          () => ldbSeq(`${dir}/${name}/ldb.db`) === lastSeq,
          60_000,
        );
        assert.deepEqual(checksumsOf(`${dir}/${name}/ldb.db`), await cluster.sorChecksums("e1"));
      }
      // The LDB file is in place a moment before the log line leaves the child's stderr pipe.
      await waitFor(
        "plain to log that it bootstrapped after the 410",
        async () => /Bootstrapped the LDB from/.test(await Deno.readTextFile(`${dir}/plain.log`)),
        10_000,
      );
      // Bounded: the Raft log was compacted behind snapshots, far below 100,000 entries' bytes.
      for (const m of cluster.members) {
        const status = await cluster.status(m.id);
        const raftBytes = await raftDataBytes(`${m.dataDir}/raft`);
        assert.ok(raftBytes < 8 * 1024 * 1024, `${m.id}'s Raft data is ${raftBytes} bytes`);
        assert.ok((status as unknown as { snapshotIndex: number }).snapshotIndex > 50_000);
      }
    } finally {
      await late.kill();
      await plain.kill();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** An LDB built by replaying ledger entries 1..seq, to compare a snapshot against. */
async function replayedChecksums(url: string, seq: number, dir: string) {
  const writer = LdbWriter.open(`${dir}/replayed.db`);
  try {
    let after = 0;
    while (after < seq) {
      const res = await call(url, "GET", `/v1/ledger?after=${after}&limit=1000`);
      const entries = (res.json.entries as LedgerEntry[]).filter((e) => e.seq <= seq);
      writer.applyBatch(entries);
      after = entries.at(-1)!.seq;
    }
  } finally {
    writer.close();
  }
  return checksumsOf(`${dir}/replayed.db`);
}

Deno.test({
  name: "a bad snapshot is refused, retried, replay is the fallback; a snapshot under writes " +
    "matches its seq",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ctl-snapshot-" });
    const cluster = new Cluster(dir, 3);
    // Serves an executive's real snapshot with a wrong checksum header, and counts the tries.
    let tries = 0;
    const liar = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async () => {
      tries++;
      const real = await fetch(`${cluster.urls[0]}/v1/snapshot`);
      const headers = new Headers(real.headers);
      headers.set("X-Ctl-Sha256", "0".repeat(64));
      return new Response(real.body, { headers });
    });
    const reflector = new CtlProcess("r", [
      "reflector",
      "--ldb",
      `${dir}/r/ldb.db`,
      "--executive",
      cluster.urls.join(","),
      "--bootstrap",
      `http://127.0.0.1:${liar.addr.port}/v1/snapshot`,
    ], `${dir}/r.log`);
    try {
      cluster.start();
      const leader = await setUp(cluster);
      // Writes continue while a snapshot is taken.
      const writing = writeEntries(leader, 3000, 8);
      await waitFor("some writes", async () => (await cluster.status("e1"))!.lastSeq > 500);
      const res = await fetch(`${leader}/v1/snapshot`);
      assert.equal(res.status, 200);
      const seq = Number(res.headers.get("X-Ctl-Seq"));
      const bytes = new Uint8Array(await res.arrayBuffer());
      await Deno.writeFile(`${dir}/snap.db`, gunzipSync(bytes));
      const lastSeq = await writing;
      assert.ok(seq > 0 && seq < lastSeq, `snapshot seq ${seq} taken mid-run (last ${lastSeq})`);
      const snap = new DatabaseSync(`${dir}/snap.db`, { readOnly: true });
      try {
        const row = snap.prepare("SELECT seq FROM _ldb_seq WHERE id = 1").get() as { seq: number };
        assert.equal(row.seq, seq, "the snapshot's _ldb_seq is its header's seq");
        assert.deepEqual(
          tableChecksums(snap),
          await replayedChecksums(leader, seq, dir),
          "its data is exactly the ledger replayed up to its seq",
        );
      } finally {
        snap.close();
      }

      reflector.start();
      await waitFor(
        `the reflector to reach ${lastSeq}`,
        () => ldbSeq(`${dir}/r/ldb.db`) === lastSeq,
        60_000,
      );
      assert.ok(tries >= 2, `the bad snapshot was retried (${tries} tries)`);
      assert.deepEqual(checksumsOf(`${dir}/r/ldb.db`), await cluster.sorChecksums("e1"));
      const log = await Deno.readTextFile(`${dir}/r.log`);
      assert.match(log, /checksum|sha/i, "the refusal names the checksum");
      assert.match(log, /replaying the whole ledger/);
    } finally {
      await reflector.kill();
      await liar.shutdown();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "an executive killed with -9 catches up from a Raft snapshot its leader built from " +
    "a file and read back from disk",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ctl-catchup-" });
    // Snapshots every ~400 entries, 20 kept behind: a member away for 2,000 entries needs one.
    const cluster = new Cluster(dir, 3, ["--snapshot-entries", "400", "--compact-keep", "20"]);
    try {
      cluster.start();
      const url = await setUp(cluster);
      const { id: leaderId } = await cluster.leader();
      const away = cluster.members.find((m) => m.id !== leaderId)!;
      await away.process.kill("SIGKILL");
      const lastSeq = await writeEntries(url, 2000, 16);
      await waitFor("the others to snapshot past the member that is away", async () => {
        for (const m of cluster.members.filter((x) => x.process.running)) {
          const s = (await cluster.status(m.id)) as unknown as { snapshotIndex: number };
          if ((s?.snapshotIndex ?? 0) < 1000) return false;
        }
        return true;
      }, 30_000);
      away.process.start();
      await cluster.waitLastSeq(lastSeq, 30_000);
      assert.deepEqual(await cluster.sorChecksums(away.id), await cluster.sorChecksums(leaderId));
      // The log lines are in place a moment after the state they describe.
      await waitFor("the logs to say how it caught up", async () => {
        const awayLog = await Deno.readTextFile(`${dir}/${away.id}.log`);
        const leaderLog = await Deno.readTextFile(`${dir}/${leaderId}.log`);
        return /installed snapshot/.test(awayLog) && /read snapshot \d+/.test(leaderLog);
      }, 10_000);
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
