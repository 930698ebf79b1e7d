import assert from "node:assert/strict";
import { Inflights, Progress } from "./progress.ts";

Deno.test("inflights: a bounded window freed by acknowledgements, in count and in bytes", () => {
  const inf = new Inflights(3, 0);
  inf.add(1, 10);
  inf.add(2, 10);
  assert.equal(inf.full(), false);
  inf.add(5, 10);
  assert.equal(inf.full(), true);
  assert.throws(() => inf.add(6, 1));
  inf.freeLE(2);
  assert.equal(inf.count(), 1);
  assert.equal(inf.bytes(), 10);
  inf.add(6, 1);
  inf.add(7, 1);
  assert.equal(inf.full(), true);
  inf.freeFirstOne();
  assert.equal(inf.count(), 2);
  inf.freeLE(100);
  assert.equal(inf.count(), 0);
  const bytes = new Inflights(10, 25);
  bytes.add(1, 10);
  bytes.add(2, 10);
  assert.equal(bytes.full(), false);
  bytes.add(3, 10);
  assert.equal(bytes.full(), true, "byte budget exhausted");
});

Deno.test("inflights: indexes must increase", () => {
  const inf = new Inflights(4, 0);
  inf.add(5, 1);
  assert.throws(() => inf.add(5, 1));
});

Deno.test("progress: probe sends one message then waits; an ack moves it to replicate", () => {
  const p = new Progress(11, false, 4, 0);
  assert.equal(p.isPaused(), false);
  p.sentEntries(3, 30);
  assert.equal(p.isPaused(), true);
  assert.equal(p.maybeUpdate(13), true);
  assert.equal(p.isPaused(), false);
  p.becomeReplicate();
  assert.equal(p.next, 14);
  p.sentEntries(2, 20);
  p.sentEntries(2, 20);
  assert.equal(p.next, 18);
  assert.equal(p.inflights.count(), 2);
  assert.equal(p.maybeUpdate(12), false, "stale ack");
});

Deno.test("progress: rejections back off to the hint in probe, to match+1 in replicate", () => {
  const p = new Progress(11, false, 4, 0);
  // Probe: a rejection of an index other than next-1 is stale.
  assert.equal(p.maybeDecrTo(5, 3), false);
  assert.equal(p.maybeDecrTo(10, 3), true);
  assert.equal(p.next, 4);
  p.maybeUpdate(3);
  p.becomeReplicate();
  p.sentEntries(5, 50);
  assert.equal(p.maybeDecrTo(2, 0), false, "at or below match: stale");
  assert.equal(p.maybeDecrTo(6, 0), true);
  assert.equal(p.next, 4);
});

Deno.test("progress: snapshot state pauses sending; probing resumes after the snapshot", () => {
  const p = new Progress(5, false, 4, 0);
  p.becomeSnapshot(20);
  assert.equal(p.isPaused(), true);
  p.becomeProbe();
  assert.equal(p.next, 21);
  p.becomeSnapshot(30);
  p.pendingSnapshot = 0;
  p.becomeProbe();
  assert.equal(p.next, 1, "a failed snapshot probes from match+1");
});
