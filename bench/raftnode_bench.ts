/**
 * Raft node benchmark: 3 host processes on this machine (fsync on), 100-byte proposals.
 * Prints p50/p99 commit latency of one sequential client, and throughput with 64 concurrent
 * proposers. Latency is measured at the client: HTTP to the leader, commit, apply, reply.
 * The same two runs are repeated with the proposers inside the leader process (host route
 * POST /load), which separates the node's own cost from the client's HTTP round trip.
 *
 *   deno run -A bench/raftnode_bench.ts [sequentialProposals=2000] [concurrentSeconds=5]
 */

import { Cluster } from "../tests/raftnode/cluster.ts";

const sequential = Number(Deno.args[0] ?? 2000);
const concurrentSeconds = Number(Deno.args[1] ?? 5);
const concurrency = 64;
const value = "x".repeat(100 - '{"key":"k-000000","value":""}'.length);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

let leaderChanges = 0;
let target = "";

/** Proposes through the current leader; follows the leader if it changed (and counts that). */
async function propose(key: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const res = await fetch(`${target}/propose`, {
      method: "POST",
      body: JSON.stringify({ key, value }),
    });
    if (res.status === 200) {
      await res.body?.cancel();
      return;
    }
    const body = await res.json().catch(() => ({}));
    const hint = body?.error?.leaderUrl;
    if (hint && hint !== target) {
      target = hint;
      leaderChanges++;
    } else {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`proposal ${key} failed 100 times`);
}

const cluster = await Cluster.create(["a", "b", "c"], {
  logLevel: "warning",
  snapshotEntries: 100_000,
  compactKeep: 10_000,
});
try {
  await cluster.startAll();
  const leader = await cluster.waitLeader(10_000);
  target = leader.url;
  for (let i = 0; i < 200; i++) await propose(`warm-${i}`);

  const latenciesMs: number[] = [];
  for (let i = 0; i < sequential; i++) {
    const t0 = performance.now();
    await propose(`k-${String(i).padStart(6, "0")}`);
    latenciesMs.push(performance.now() - t0);
  }
  latenciesMs.sort((a, b) => a - b);

  let done = 0;
  const stopAt = performance.now() + concurrentSeconds * 1000;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
    let n = 0;
    while (performance.now() < stopAt) {
      await propose(`c-${w}-${n++}`);
      done++;
    }
  }));
  const elapsedS = (performance.now() - started) / 1000;
  const inLeader = async (concurrency: number, durationMs: number) => {
    const res = await fetch(`${target}/load`, {
      method: "POST",
      body: JSON.stringify({ concurrency, durationMs }),
    });
    return await res.json() as {
      proposals: number;
      failed: number;
      perSecond: number;
      p50Ms: number;
      p99Ms: number;
    };
  };
  const seqIn = await inLeader(1, 3000);
  const concIn = await inLeader(concurrency, concurrentSeconds * 1000);
  const s = await (await cluster.waitLeader(10_000)).status();
  console.log(`raftnode bench: 3 processes on loopback, fsync on, 100-byte proposals`);
  console.log(
    `sequential client (${sequential} proposals): p50 ${
      percentile(latenciesMs, 0.5).toFixed(3)
    } ms, ` +
      `p99 ${percentile(latenciesMs, 0.99).toFixed(3)} ms`,
  );
  console.log(
    `${concurrency} concurrent proposers (${concurrentSeconds} s): ${done} proposals, ` +
      `${Math.round(done / elapsedS)} proposals/s`,
  );
  console.log(
    `proposers inside the leader process (no client HTTP): sequential p50 ${
      seqIn.p50Ms.toFixed(3)
    } ms, p99 ${seqIn.p99Ms.toFixed(3)} ms; ${concurrency} concurrent: ${concIn.perSecond} ` +
      `proposals/s (p50 ${concIn.p50Ms.toFixed(3)} ms, p99 ${concIn.p99Ms.toFixed(3)} ms, ` +
      `${seqIn.failed + concIn.failed} refused during leader changes)`,
  );
  console.log(`leader commit index ${s.commitIndex}, leader changes seen ${leaderChanges}`);
} finally {
  await cluster.destroy();
}
