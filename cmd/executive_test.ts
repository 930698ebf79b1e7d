import assert from "node:assert/strict";
import { Command } from "commander";
import { buildCommand, prepareProgram, runProgram, UsageError } from "./cli.ts";
import {
  executiveCommand,
  jitteredSnapshotEntries,
  parsePeers,
  raftSettings,
} from "./executive.ts";

Deno.test("--peers parses ID=URL items and refuses malformed or repeated ones", () => {
  assert.deepEqual(parsePeers(["e1=http://a:7001/", "e2=http://b:7001"]), {
    e1: "http://a:7001",
    e2: "http://b:7001",
  });
  assert.throws(() => parsePeers(["e1:http://a:7001"]), UsageError);
  assert.throws(() => parsePeers(["e1=http://a:1", "e1=http://b:1"]), /twice/);
});

Deno.test("members snapshot at different points within ±20% of the threshold", () => {
  const points = ["e1", "e2", "e3", "e4", "e5"].map((id) => jitteredSnapshotEntries(10_000, id));
  for (const p of points) assert.ok(p >= 8_000 && p <= 12_000, `${p} within ±20%`);
  assert.equal(new Set(points).size, points.length, "no two members share a point");
  assert.ok(Math.max(...points) - Math.min(...points) >= 1_000, "spread apart");
  assert.equal(jitteredSnapshotEntries(10_000, "e1"), jitteredSnapshotEntries(10_000, "e1"));
});

Deno.test("--commit-hold, --tick, --election-ticks, --compact-keep and --follower-fsync-wait reach the Raft node's settings", async () => {
  const seen: Record<string, unknown>[] = [];
  const program = new Command("ctl");
  program.addCommand(buildCommand({
    ...executiveCommand,
    run: (opts) => {
      seen.push(opts);
      return Promise.resolve(0);
    },
  }));
  prepareProgram(program);
  const run = (...args: string[]) => runProgram(program, ["executive", "--data", "/x", ...args]);

  assert.equal(await run(), 0);
  assert.deepEqual(
    { ...raftSettings(seen[0], "e1"), snapshotEntries: undefined },
    {
      tickMs: 50,
      electionTicks: 10,
      commitHoldMs: 1,
      followerFsyncWaitMs: 0,
      snapshotEntries: undefined,
      compactKeepEntries: 5000,
    },
  );
  assert.equal(await run("--commit-hold", "0", "--tick", "20ms", "--election-ticks", "5"), 0);
  const s = raftSettings(seen[1], "e1");
  assert.deepEqual([s.commitHoldMs, s.tickMs, s.electionTicks], [0, 20, 5]);
  assert.equal(await run("--commit-hold", "2ms"), 0);
  assert.equal(raftSettings(seen[2], "e1").commitHoldMs, 2);
  assert.equal(await run("--commit-hold", "soon"), 2, "not a duration: a usage error");
  assert.equal(await run("--compact-keep", "250", "--snapshot-entries", "1000"), 0);
  assert.equal(raftSettings(seen[3], "e1").compactKeepEntries, 250);
  assert.equal(await run("--compact-keep", "many"), 2, "not a number: a usage error");
  assert.equal(await run("--follower-fsync-wait", "1ms"), 0);
  assert.equal(raftSettings(seen[4], "e1").followerFsyncWaitMs, 1);
  assert.equal(await run("--follower-fsync-wait", "3ms"), 0);
  assert.equal(raftSettings(seen[5], "e1").followerFsyncWaitMs, 3);
  assert.equal(seen.length, 6);
});
