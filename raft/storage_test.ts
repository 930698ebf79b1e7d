import assert from "node:assert/strict";
import { CompactedError, UnavailableError } from "./errors.ts";
import { emptyConfState, MemoryStorage } from "./storage.ts";
import type { Entry } from "./types.ts";

const e = (index: number, term: number, size = 0): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array(size),
});

Deno.test("MemoryStorage: append, conflicting suffix replaced, terms and bounds", () => {
  const s = new MemoryStorage();
  s.append([e(1, 1), e(2, 1), e(3, 2)]);
  assert.equal(s.firstIndex(), 1);
  assert.equal(s.lastIndex(), 3);
  s.append([e(3, 3), e(4, 3)]);
  assert.equal(s.term(3), 3);
  assert.equal(s.lastIndex(), 4);
  s.append([e(2, 4)]);
  assert.equal(s.lastIndex(), 2, "conflicting suffix dropped");
  assert.throws(() => s.append([e(5, 4)]), /missing log entries/);
  assert.throws(() => s.term(3), UnavailableError);
  assert.deepEqual(s.entries(1, 3).map((x) => x.term), [1, 4]);
});

Deno.test("MemoryStorage: entries are size-limited but never empty", () => {
  const s = new MemoryStorage();
  s.append([e(1, 1, 100), e(2, 1, 100), e(3, 1, 100)]);
  assert.equal(s.entries(1, 4, 1).length, 1);
  assert.equal(s.entries(1, 4, 250).length, 2);
  assert.equal(s.entries(1, 4).length, 3);
});

Deno.test("MemoryStorage: snapshot then compaction keeps the term at the snapshot index", () => {
  const s = new MemoryStorage();
  s.append([e(1, 1), e(2, 1), e(3, 2), e(4, 2)]);
  s.createSnapshot(3, emptyConfState(), new Uint8Array([7]));
  s.compact(3);
  assert.equal(s.firstIndex(), 4);
  assert.equal(s.term(3), 2);
  assert.throws(() => s.term(2), CompactedError);
  assert.throws(() => s.entries(3, 5), CompactedError);
  assert.throws(() => s.compact(4), /beyond snapshot/);
  assert.equal(s.snapshot().meta.index, 3);
  assert.deepEqual([...s.snapshot().data], [7]);
});

Deno.test("MemoryStorage: applying a leader's snapshot replaces the log; an older one is refused", () => {
  const s = new MemoryStorage();
  s.append([e(1, 1), e(2, 1)]);
  s.applySnapshot({ meta: { index: 10, term: 3, conf: emptyConfState() }, data: new Uint8Array() });
  assert.equal(s.firstIndex(), 11);
  assert.equal(s.lastIndex(), 10);
  assert.equal(s.term(10), 3);
  assert.throws(
    () =>
      s.applySnapshot({
        meta: { index: 5, term: 3, conf: emptyConfState() },
        data: new Uint8Array(),
      }),
    /SnapshotOutOfDate|Cannot apply/,
  );
});

Deno.test("MemoryStorage: released snapshot data is unavailable, wanted, and restored only for its own index", () => {
  const s = new MemoryStorage();
  s.releaseSnapshotData();
  assert.equal(s.snapshotResident(), true, "the empty founding snapshot is never released");
  s.append([e(1, 1), e(2, 1), e(3, 2), e(4, 2)]);
  s.createSnapshot(3, emptyConfState(), new Uint8Array([7, 8]));
  s.releaseSnapshotData();
  assert.equal(s.snapshotResident(), false);
  assert.equal(s.wantedSnapshot(), null, "nobody asked yet");
  assert.throws(() => s.snapshot(), /SnapshotUnavailable|not in memory/);
  assert.equal(s.wantedSnapshot(), 3);
  assert.equal(s.term(3), 2, "the log's anchor at the snapshot index stays");
  assert.equal(s.restoreSnapshotData(2, new Uint8Array([1])), false, "another snapshot's data");
  assert.equal(s.restoreSnapshotData(3, new Uint8Array([7, 8])), true);
  assert.deepEqual([...s.snapshot().data], [7, 8]);
  assert.equal(s.wantedSnapshot(), null);
  assert.equal(s.restoreSnapshotData(3, new Uint8Array([9])), false, "already in memory");

  // A newer snapshot while released: the load of the old one no longer applies.
  s.releaseSnapshotData();
  assert.throws(() => s.snapshot());
  s.createSnapshot(4, emptyConfState(), new Uint8Array([4]));
  assert.equal(s.wantedSnapshot(), null);
  assert.equal(s.restoreSnapshotData(3, new Uint8Array([7, 8])), false);
  assert.deepEqual([...s.snapshot().data], [4]);
});

Deno.test("MemoryStorage: a snapshot created without data is on the driver's disk only", () => {
  const s = new MemoryStorage();
  s.append([e(1, 1), e(2, 1), e(3, 2)]);
  s.createSnapshot(2, emptyConfState(), null);
  assert.equal(s.snapshotMeta().index, 2);
  assert.equal(s.snapshotMeta().term, 1);
  assert.equal(s.snapshotResident(), false);
  assert.throws(() => s.snapshot(), /SnapshotUnavailable|not in memory/);
  assert.equal(s.wantedSnapshot(), 2);
  assert.equal(s.restoreSnapshotData(2, new Uint8Array([5])), true);
  assert.deepEqual([...s.snapshot().data], [5]);
});
