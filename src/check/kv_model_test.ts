import assert from "node:assert/strict";
import { checkEvents } from "./checker.ts";
import { HistoryError } from "./history.ts";
import { kvModel } from "./kv_model.ts";
import { history, linearizableRegisterHistory, seededRandom } from "./test_histories.ts";

Deno.test("kv: each key is its own register, absent keys read null", () => {
  const events = history(
    [0, "invoke", "write", 1, "a"],
    [0, "ok", "write", 1, "a"],
    [1, "invoke", "read", null, "b"],
    [1, "ok", "read", null, "b"],
    [1, "invoke", "read", null, "a"],
    [1, "ok", "read", 1, "a"],
  );
  assert.equal(checkEvents(kvModel, events).verdict, "linearizable");
  const crossed = history(
    [0, "invoke", "write", 1, "a"],
    [0, "ok", "write", 1, "a"],
    [1, "invoke", "read", null, "b"],
    [1, "ok", "read", 1, "b"],
  );
  assert.equal(checkEvents(kvModel, crossed).verdict, "not-linearizable");
});

Deno.test("kv: cas and unknown outcomes work per key", () => {
  const events = history(
    [0, "invoke", "write", 1, "a"],
    [0, "ok", "write", 1, "a"],
    [0, "invoke", "cas", [1, 2], "a"],
    [0, "info", "cas", undefined, "a"],
    [1, "invoke", "cas", [1, 5], "b"],
    [1, "fail", "cas", [1, 5], "b"],
    [2, "invoke", "read", null, "a"],
    [2, "ok", "read", 2, "a"],
  );
  assert.equal(checkEvents(kvModel, events).verdict, "linearizable");
  const wrongFail = history(
    [0, "invoke", "write", 1, "b"],
    [0, "ok", "write", 1, "b"],
    [1, "invoke", "cas", [1, 5], "b"],
    [1, "fail", "cas", [1, 5], "b"],
  );
  assert.equal(checkEvents(kvModel, wrongFail).verdict, "not-linearizable");
});

Deno.test("kv: a history is split per key and the failing key is named", () => {
  const events = history(
    [0, "invoke", "write", 1, "a"],
    [0, "ok", "write", 1, "a"],
    [1, "invoke", "write", 7, "b"],
    [1, "ok", "write", 7, "b"],
    [2, "invoke", "read", null, "b"],
    [2, "ok", "read", 8, "b"],
  );
  const result = checkEvents(kvModel, events);
  assert.equal(result.verdict, "not-linearizable");
  assert.deepEqual(result.partitionSizes, [1, 2]);
  const explanation = result.explanation!;
  assert.equal(explanation.partition, 1);
  assert.deepEqual(explanation.unplaceable.map((op) => op.input.key), ["b"]);
  assert.deepEqual(Object.fromEntries(explanation.stateAfterPrefix), { b: 7 });
});

Deno.test("kv: large histories over many keys check fast, and a single stale read is found", () => {
  const random = seededRandom(5);
  const events = linearizableRegisterHistory(random, {
    processes: 20,
    operations: 6_000,
    values: 5,
    keys: 100,
  });
  const ok = checkEvents(kvModel, events, { timeoutMs: 10_000 });
  assert.equal(ok.verdict, "linearizable");
  assert.equal(ok.partitionSizes.length, 100);
  assert.ok(ok.elapsedMs < 3_000, `took ${ok.elapsedMs.toFixed(0)} ms`);

  // Make one read of a key see a value that key never held.
  const index = events.findIndex((e) => e.type === "ok" && e.f === "read");
  const broken = events.map((e, i) => i === index ? { ...e, value: "never written" } : e);
  const bad = checkEvents(kvModel, broken, { timeoutMs: 10_000 });
  assert.equal(bad.verdict, "not-linearizable");
  assert.ok(bad.explanation!.unplaceable.some((op) => op.input.key === events[index].key));
});

Deno.test("kv: a key that runs out of memory does not hide a violation on another key", () => {
  // Key "hard": 18 concurrent unknown writes and an impossible read, far beyond a tiny memory
  // limit. Key "bad": more operations (so it is checked later), ending in a stale read.
  const events = [];
  for (let p = 0; p < 18; p++) {
    events.push({ process: p, type: "invoke" as const, f: "write", key: "hard", value: p });
  }
  for (let p = 0; p < 18; p++) {
    events.push({ process: p, type: "info" as const, f: "write", key: "hard" });
  }
  events.push(...history([50, "invoke", "read", null, "hard"], [50, "ok", "read", 99, "hard"]));
  for (let i = 0; i < 30; i++) {
    events.push(...history([60, "invoke", "write", i, "bad"], [60, "ok", "write", i, "bad"]));
  }
  events.push(...history([61, "invoke", "read", null, "bad"], [61, "ok", "read", 3, "bad"]));

  const both = checkEvents(kvModel, events, { visitedBytesMax: 1 << 20 });
  assert.deepEqual(both.partitionSizes, [19, 31]);
  assert.equal(both.verdict, "not-linearizable");
  assert.deepEqual(both.explanation!.unplaceable.map((op) => op.input.key), ["bad"]);
  const hardOnly = checkEvents(kvModel, events.filter((e) => e.key === "hard"), {
    visitedBytesMax: 1 << 20,
  });
  assert.equal(hardOnly.verdict, "unknown");
  assert.equal(hardOnly.unknownReason, "memory");
});

Deno.test("kv: equal maps hash alike whatever the insertion order", () => {
  const a = new Map([["x", 1], ["y", 2]]);
  const b = new Map([["y", 2], ["x", 1]]);
  assert.ok(kvModel.equal!(a, b));
  assert.equal(kvModel.hash!(a), kvModel.hash!(b));
  assert.ok(!kvModel.equal!(a, new Map([["x", 1], ["y", 3]])));
});

Deno.test("kv: an operation without a key is a history error", () => {
  const events = history([0, "invoke", "write", 1], [0, "ok", "write", 1]);
  assert.throws(() => checkEvents(kvModel, events), HistoryError);
});
