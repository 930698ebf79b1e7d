import assert from "node:assert/strict";
import { UsageError } from "./cli.ts";
import { jitteredSnapshotEntries, parsePeers } from "./executive.ts";

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
