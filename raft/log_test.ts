import assert from "node:assert/strict";
import { RaftInvariantError } from "./errors.ts";
import { RaftLog } from "./log.ts";
import { emptyConfState, MemoryStorage } from "./storage.ts";
import type { Entry } from "./types.ts";

const e = (index: number, term: number): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array(),
});

function logWith(terms: number[]): RaftLog {
  const s = new MemoryStorage();
  s.append(terms.map((t, i) => e(i + 1, t)));
  return new RaftLog(s, Infinity);
}

Deno.test("log: maybeAppend accepts on matching (index, term), truncates a conflicting suffix", () => {
  const log = logWith([1, 1, 2]);
  assert.equal(log.maybeAppend(3, 3, 0, [e(4, 3)]), undefined, "term mismatch at 3");
  assert.equal(log.maybeAppend(4, 2, 0, []), undefined, "index 4 missing");
  assert.equal(log.maybeAppend(2, 1, 0, [e(3, 3), e(4, 3)]), 4);
  assert.equal(log.term(3), 3);
  assert.equal(log.lastIndex(), 4);
  // A duplicate of what we have changes nothing and still acknowledges.
  assert.equal(log.maybeAppend(2, 1, 0, [e(3, 3)]), 3);
  assert.equal(log.lastIndex(), 4);
});

Deno.test("log: commit follows the leader but never past the last new entry", () => {
  const log = logWith([1, 1]);
  assert.equal(log.maybeAppend(2, 1, 10, [e(3, 2)]), 3);
  assert.equal(log.committed, 3);
  assert.equal(log.maybeAppend(1, 1, 10, []), 1);
  assert.equal(log.committed, 3, "never decreases");
});

Deno.test("log: a conflict at or below the commit index is an invariant violation", () => {
  const log = logWith([1, 1, 1]);
  log.commitTo(3);
  assert.throws(() => log.maybeAppend(1, 1, 3, [e(2, 2)]), RaftInvariantError);
});

Deno.test("log: §5.4.2 maybeCommit only commits an entry of the given term", () => {
  const log = logWith([1, 2, 2]);
  assert.equal(log.maybeCommit(3, 3), false);
  assert.equal(log.maybeCommit(3, 2), true);
  assert.equal(log.committed, 3);
});

Deno.test("log: findConflictByTerm skips a whole term for fast backtracking", () => {
  const log = logWith([1, 1, 2, 2, 2, 4, 4]);
  assert.deepEqual(log.findConflictByTerm(7, 3), { index: 5, term: 2 });
  assert.deepEqual(log.findConflictByTerm(7, 4), { index: 7, term: 4 });
  assert.deepEqual(log.findConflictByTerm(5, 1), { index: 2, term: 1 });
  assert.deepEqual(log.findConflictByTerm(5, 0), { index: 0, term: 0 });
});

Deno.test("log: isUpToDate compares last term, then length (§5.4.1)", () => {
  const log = logWith([1, 2, 2]);
  assert.equal(log.isUpToDate(3, 2), true);
  assert.equal(log.isUpToDate(2, 2), false);
  assert.equal(log.isUpToDate(1, 3), true);
  assert.equal(log.isUpToDate(9, 1), false);
});

Deno.test("log: slices span storage and the unstable tail; stableTo moves the boundary", () => {
  const log = logWith([1, 1]);
  log.append([e(3, 2), e(4, 2)]);
  assert.deepEqual(log.slice(1, 5).map((x) => x.index), [1, 2, 3, 4]);
  assert.equal(log.lastStableIndex(), 2);
  log.stableTo(4, 1);
  assert.equal(log.lastStableIndex(), 2, "wrong term: not stable");
  log.stableTo(3, 2);
  assert.equal(log.lastStableIndex(), 3);
});

Deno.test("log: applied never passes committed", () => {
  const log = logWith([1, 1, 1]);
  log.commitTo(2);
  log.appliedTo(2);
  assert.throws(() => log.appliedTo(3), RaftInvariantError);
  assert.throws(() => log.appliedTo(1), RaftInvariantError);
  assert.throws(() => log.commitTo(9), RaftInvariantError);
});

Deno.test("log: restore from a snapshot resets the log to start after it", () => {
  const log = logWith([1, 1]);
  log.restore({ meta: { index: 10, term: 3, conf: emptyConfState() }, data: new Uint8Array() });
  assert.equal(log.firstIndex(), 11);
  assert.equal(log.lastIndex(), 10);
  assert.equal(log.term(10), 3);
  assert.equal(log.committed, 10);
  assert.deepEqual(log.nextCommittedEntries(), []);
});
