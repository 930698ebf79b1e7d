import assert from "node:assert/strict";
import {
  jointCommitted,
  jointVoteResult,
  majorityCommitted,
  majorityVoteResult,
} from "./quorum.ts";

const acked = (m: Record<string, number>) => (id: string) => m[id] ?? 0;

Deno.test("majorityCommitted: the highest index a majority has (golden table)", () => {
  const cases: [string[], Record<string, number>, number][] = [
    [["a"], { a: 5 }, 5],
    [["a", "b"], { a: 5, b: 3 }, 3],
    [["a", "b", "c"], { a: 5, b: 3, c: 1 }, 3],
    [["a", "b", "c"], { a: 5, b: 5 }, 5],
    [["a", "b", "c", "d"], { a: 9, b: 7, c: 5, d: 1 }, 5],
    [["a", "b", "c", "d", "e"], { a: 9, b: 7, c: 5, d: 1 }, 5],
    [["a", "b", "c", "d", "e"], { a: 9, b: 7 }, 0],
  ];
  for (const [voters, m, want] of cases) {
    assert.equal(majorityCommitted(voters, acked(m)), want, JSON.stringify([voters, m]));
  }
  assert.equal(majorityCommitted([], acked({})), Infinity);
});

Deno.test("majorityVoteResult: won, lost or pending (golden table)", () => {
  const v = (o: Record<string, boolean>) => new Map(Object.entries(o));
  assert.equal(majorityVoteResult(["a", "b", "c"], v({ a: true, b: true })), "won");
  assert.equal(majorityVoteResult(["a", "b", "c"], v({ a: true })), "pending");
  assert.equal(majorityVoteResult(["a", "b", "c"], v({ a: true, b: false })), "pending");
  assert.equal(majorityVoteResult(["a", "b", "c"], v({ a: false, b: false })), "lost");
  assert.equal(majorityVoteResult(["a", "b", "c", "d"], v({ a: true, b: true })), "pending");
  assert.equal(
    majorityVoteResult(["a", "b", "c", "d"], v({ a: true, b: true, c: false, d: false })),
    "lost",
  );
  assert.equal(majorityVoteResult([], v({})), "won");
  // Votes of non-members do not count.
  assert.equal(majorityVoteResult(["a", "b", "c"], v({ a: true, x: true, y: true })), "pending");
});

Deno.test("joint quorum: commitment and elections need both majorities", () => {
  const voters = { incoming: new Set(["a", "b", "c"]), outgoing: new Set(["c", "d", "e"]) };
  assert.equal(jointCommitted(voters, acked({ a: 9, b: 9, c: 2, d: 1, e: 1 })), 1);
  assert.equal(jointCommitted(voters, acked({ a: 9, b: 9, c: 5, d: 5, e: 1 })), 5);
  const v = (o: Record<string, boolean>) => new Map(Object.entries(o));
  assert.equal(jointVoteResult(voters, v({ a: true, b: true })), "pending");
  assert.equal(jointVoteResult(voters, v({ a: true, b: true, d: true, e: true })), "won");
  assert.equal(jointVoteResult(voters, v({ a: true, b: true, d: false, e: false })), "lost");
  const simple = { incoming: new Set(["a"]), outgoing: new Set<string>() };
  assert.equal(jointCommitted(simple, acked({ a: 4 })), 4);
});
