import assert from "node:assert/strict";
import { checkEvents, checkOperations } from "./checker.ts";
import { eventsToOperations, HistoryError } from "./history.ts";
import type { Model } from "./model.ts";
import { registerModel } from "./register_model.ts";
import {
  bruteForceLinearizable,
  history,
  isValidLinearization,
  linearizableRegisterHistory,
  seededRandom,
} from "./test_histories.ts";

function verdict(...events: Parameters<typeof history>) {
  return checkEvents(registerModel, history(...events)).verdict;
}

Deno.test("an empty history is linearizable", () => {
  assert.equal(verdict(), "linearizable");
});

Deno.test("the register starts empty: a first read sees null, not a value", () => {
  assert.equal(verdict([0, "invoke", "read"], [0, "ok", "read", null]), "linearizable");
  assert.equal(verdict([0, "invoke", "read"], [0, "ok", "read", 0]), "not-linearizable");
});

Deno.test("sequential reads see the last write", () => {
  const write1 = [[0, "invoke", "write", 1], [0, "ok", "write", 1]] as const;
  assert.equal(verdict(...write1, [1, "invoke", "read"], [1, "ok", "read", 1]), "linearizable");
  assert.equal(
    verdict(...write1, [1, "invoke", "read"], [1, "ok", "read", 2]),
    "not-linearizable",
  );
  assert.equal(
    verdict(...write1, [1, "invoke", "read"], [1, "ok", "read", null]),
    "not-linearizable",
  );
});

Deno.test("a read concurrent with a write may see the old or the new value", () => {
  for (const seen of [null, 1]) {
    assert.equal(
      verdict(
        [0, "invoke", "write", 1],
        [1, "invoke", "read"],
        [1, "ok", "read", seen],
        [0, "ok", "write", 1],
      ),
      "linearizable",
    );
  }
});

Deno.test("once a read sees a new value, a later read cannot see the old one", () => {
  // Process 0's write is still running when both reads happen, so each read alone is fine.
  assert.equal(
    verdict(
      [0, "invoke", "write", 1],
      [1, "invoke", "read"],
      [1, "ok", "read", 1],
      [2, "invoke", "read"],
      [2, "ok", "read", null],
      [0, "ok", "write", 1],
    ),
    "not-linearizable",
  );
});

Deno.test("two concurrent writes take effect in one order, seen alike by later reads", () => {
  const writes = [
    [0, "invoke", "write", 1],
    [1, "invoke", "write", 2],
    [0, "ok", "write", 1],
    [1, "ok", "write", 2],
  ] as const;
  const reads = (a: number, b: number) =>
    [
      [2, "invoke", "read"],
      [2, "ok", "read", a],
      [2, "invoke", "read"],
      [2, "ok", "read", b],
    ] as const;
  assert.equal(verdict(...writes, ...reads(1, 1)), "linearizable");
  assert.equal(verdict(...writes, ...reads(2, 2)), "linearizable");
  assert.equal(verdict(...writes, ...reads(2, 1)), "not-linearizable");
});

Deno.test("a successful cas needs its expected value and installs the new one", () => {
  const write1 = [[0, "invoke", "write", 1], [0, "ok", "write", 1]] as const;
  const cas = [[0, "invoke", "cas", [1, 2]], [0, "ok", "cas", [1, 2]]] as const;
  assert.equal(
    verdict(...write1, ...cas, [1, "invoke", "read"], [1, "ok", "read", 2]),
    "linearizable",
  );
  assert.equal(
    verdict(...write1, ...cas, [1, "invoke", "read"], [1, "ok", "read", 1]),
    "not-linearizable",
  );
  assert.equal(verdict(...cas), "not-linearizable", "cas from 1 cannot succeed on null");
});

Deno.test("a failed cas is an observation: it ran and saw another value", () => {
  const write1 = [[0, "invoke", "write", 1], [0, "ok", "write", 1]] as const;
  assert.equal(
    verdict(...write1, [0, "invoke", "cas", [0, 2]], [0, "fail", "cas", [0, 2]]),
    "linearizable",
  );
  assert.equal(
    verdict(...write1, [0, "invoke", "cas", [1, 2]], [0, "fail", "cas", [1, 2]]),
    "not-linearizable",
    "the register held 1, so cas(1, 2) cannot fail",
  );
  // Concurrent with a write of 1, the failed cas can have run before it.
  assert.equal(
    verdict(
      [0, "invoke", "write", 1],
      [1, "invoke", "cas", [1, 2]],
      [1, "fail", "cas", [1, 2]],
      [0, "ok", "write", 1],
      [2, "invoke", "read"],
      [2, "ok", "read", 1],
    ),
    "linearizable",
  );
});

Deno.test("a failed write did not happen", () => {
  assert.equal(
    verdict(
      [0, "invoke", "write", 1],
      [0, "ok", "write", 1],
      [0, "invoke", "write", 2],
      [0, "fail", "write", 2],
      [1, "invoke", "read"],
      [1, "ok", "read", 2],
    ),
    "not-linearizable",
  );
});

Deno.test("an unknown write may take effect at any time after its invocation, or never", () => {
  const lost = [[0, "invoke", "write", 1], [0, "info", "write"]] as const;
  const read = (value: unknown) => [[1, "invoke", "read"], [1, "ok", "read", value]] as const;
  assert.equal(verdict(...lost, ...read(1)), "linearizable");
  assert.equal(verdict(...lost, ...read(null)), "linearizable");
  assert.equal(verdict(...lost, ...read(null), ...read(1)), "linearizable", "took effect late");
  assert.equal(verdict(...lost, ...read(1), ...read(null)), "not-linearizable", "cannot undo");
  // Much later, after another write completed and was read.
  assert.equal(
    verdict(
      ...lost,
      [2, "invoke", "write", 2],
      [2, "ok", "write", 2],
      ...read(2),
      ...read(1),
    ),
    "linearizable",
  );
  // ...but never before its invocation.
  assert.equal(verdict(...read(1), ...lost), "not-linearizable");
});

Deno.test("an invocation that never completes counts as unknown", () => {
  const pending = [0, "invoke", "write", 1] as const;
  assert.equal(verdict(pending, [1, "invoke", "read"], [1, "ok", "read", 1]), "linearizable");
  assert.equal(verdict([1, "invoke", "read"], [1, "ok", "read", 1], pending), "not-linearizable");
});

Deno.test("an unknown cas swaps only if it finds its expected value", () => {
  const setup = [
    [0, "invoke", "write", 1],
    [0, "ok", "write", 1],
    [0, "invoke", "cas", [1, 2]],
    [0, "info", "cas"],
  ] as const;
  const read = (value: unknown) => [[1, "invoke", "read"], [1, "ok", "read", value]] as const;
  assert.equal(verdict(...setup, ...read(2)), "linearizable");
  assert.equal(verdict(...setup, ...read(1)), "linearizable");
  assert.equal(verdict(...setup, ...read(3)), "not-linearizable");
  assert.equal(verdict(...setup, ...read(2), ...read(1)), "not-linearizable");
});

Deno.test("reads with unknown results constrain nothing and are dropped", () => {
  const result = checkEvents(
    registerModel,
    history(
      [0, "invoke", "read"],
      [0, "info", "read"],
      [1, "invoke", "write", 1],
      [1, "ok", "write", 1],
    ),
  );
  assert.equal(result.verdict, "linearizable");
  assert.equal(result.droppedOperations, 1);
  assert.deepEqual(result.partitionSizes, [1]);
});

Deno.test("operations that touch at an instant are concurrent", () => {
  // With timestamps: the read returns at 5, the write is called at 5.
  const events = [
    { process: 1, type: "invoke", f: "read", time: 1 },
    { process: 0, type: "invoke", f: "write", value: 1, time: 5 },
    { process: 1, type: "ok", f: "read", value: 1, time: 5 },
    { process: 0, type: "ok", f: "write", value: 1, time: 9 },
  ] as const;
  assert.equal(checkEvents(registerModel, events).verdict, "linearizable");
  const later = events.map((e) => e.f === "write" && e.type === "invoke" ? { ...e, time: 6 } : e);
  assert.equal(checkEvents(registerModel, later).verdict, "not-linearizable");
});

Deno.test("a violation is explained by the longest prefix and what cannot follow it", () => {
  const result = checkEvents(
    registerModel,
    history(
      [0, "invoke", "write", 1],
      [0, "ok", "write", 1],
      [1, "invoke", "read"],
      [1, "ok", "read", 1],
      [2, "invoke", "read"],
      [3, "invoke", "write", 3],
      [2, "ok", "read", null],
      [3, "ok", "write", 3],
    ),
  );
  assert.equal(result.verdict, "not-linearizable");
  const explanation = result.explanation;
  assert.ok(explanation !== undefined);
  // The concurrent write of 3 fits after the read of 1; the stale read of null fits nowhere.
  assert.deepEqual(explanation.prefix.map((op) => op.id), [0, 1, 3]);
  assert.equal(explanation.stateAfterPrefix, 3);
  assert.deepEqual(explanation.unplaceable.map((op) => op.id), [2]);
});

Deno.test("the explanation's unplaceable operations are each rejected after the prefix", () => {
  const random = seededRandom(7);
  let violations = 0;
  for (let round = 0; round < 200 && violations < 30; round++) {
    const events = corrupt(
      linearizableRegisterHistory(random, { processes: 4, operations: 30, values: 4 }),
      random,
    );
    const result = checkEvents(registerModel, events);
    if (result.verdict !== "not-linearizable") continue;
    violations++;
    const { prefix, stateAfterPrefix, unplaceable } = result.explanation!;
    assert.ok(isValidLinearization(registerModel, prefix));
    assert.ok(unplaceable.length > 0);
    for (const op of unplaceable) {
      assert.equal(registerModel.step(stateAfterPrefix, op.input, op.output)[0], false);
    }
  }
  assert.ok(violations >= 10, `only ${violations} violations generated`);
});

Deno.test("histories of a correct register are linearizable, with a valid linearization", () => {
  const random = seededRandom(42);
  for (let round = 0; round < 50; round++) {
    const events = linearizableRegisterHistory(random, {
      processes: 5,
      operations: 60,
      values: 3,
    });
    const result = checkEvents(registerModel, events);
    assert.equal(result.verdict, "linearizable", `round ${round}`);
    const [order] = result.linearizations!;
    assert.equal(order.length, result.partitionSizes[0]);
    assert.ok(isValidLinearization(registerModel, order), `round ${round}`);
  }
});

Deno.test("verdicts agree with a brute-force search on small random histories", () => {
  const random = seededRandom(1234);
  const counts = { linearizable: 0, "not-linearizable": 0 };
  for (let round = 0; round < 400; round++) {
    const events = linearizableRegisterHistory(random, { processes: 3, operations: 7, values: 3 });
    const operations = eventsToOperations(random() < 0.7 ? corrupt(events, random) : events);
    const expected = bruteForceLinearizable(registerModel, operations)
      ? "linearizable"
      : "not-linearizable";
    const { verdict } = checkOperations(registerModel, operations);
    assert.equal(verdict, expected, `round ${round}: ${JSON.stringify(events)}`);
    counts[expected]++;
  }
  assert.ok(counts.linearizable > 50 && counts["not-linearizable"] > 50, JSON.stringify(counts));
});

Deno.test("skipping orders of interchangeable operations does not change verdicts", () => {
  const { operationKey: _, ...withoutSymmetry } = registerModel;
  const random = seededRandom(99);
  for (let round = 0; round < 100; round++) {
    const events = linearizableRegisterHistory(random, { processes: 6, operations: 40, values: 2 });
    const operations = eventsToOperations(random() < 0.5 ? corrupt(events, random) : events);
    assert.equal(
      checkOperations(registerModel, operations).verdict,
      checkOperations(withoutSymmetry, operations).verdict,
      `round ${round}`,
    );
  }
});

Deno.test("identical operations are not forced into call order when one nests in the other", () => {
  // Two writes of 1: the long one is called first but must take effect last.
  assert.equal(
    verdict(
      [0, "invoke", "write", 1],
      [1, "invoke", "write", 1],
      [1, "ok", "write", 1],
      [1, "invoke", "write", 2],
      [1, "ok", "write", 2],
      [1, "invoke", "read"],
      [1, "ok", "read", 2],
      [0, "ok", "write", 1],
      [1, "invoke", "read"],
      [1, "ok", "read", 1],
    ),
    "linearizable",
  );
});

Deno.test("a check that cannot finish in its budget says unknown instead of hanging", () => {
  // 18 concurrent writes of distinct values with unknown outcomes, then a read of a value never
  // written: every subset of the writes, in every state, is a configuration to rule out.
  const events = [];
  for (let p = 0; p < 18; p++) events.push({ process: p, type: "invoke", f: "write", value: p });
  for (let p = 0; p < 18; p++) events.push({ process: p, type: "info", f: "write" });
  events.push({ process: 99, type: "invoke", f: "read" }, {
    process: 99,
    type: "ok",
    f: "read",
    value: 99,
  });
  const typed = events as Parameters<typeof checkEvents>[1];

  const bySteps = checkEvents(registerModel, typed, { stepsMax: 10_000 });
  assert.equal(bySteps.verdict, "unknown");
  assert.equal(bySteps.unknownReason, "steps");
  assert.ok(bySteps.steps <= 10_001);

  const byTime = checkEvents(registerModel, typed, { timeoutMs: 50 });
  assert.equal(byTime.verdict, "unknown");
  assert.equal(byTime.unknownReason, "timeout");
  assert.ok(byTime.elapsedMs < 1_000, `took ${byTime.elapsedMs} ms`);
  assert.ok(byTime.explanation !== undefined && byTime.explanation.prefix.length > 0);

  const byMemory = checkEvents(registerModel, typed, { visitedBytesMax: 1 << 20 });
  assert.equal(byMemory.verdict, "unknown");
  assert.equal(byMemory.unknownReason, "memory");
});

Deno.test("an operation the model cannot take is reported even when the search stops first", () => {
  const events = history(
    [0, "invoke", "read"],
    [0, "ok", "read", 5],
    [1, "invoke", "append", 1],
    [1, "ok", "append", 1],
  );
  assert.throws(
    () => checkEvents(registerModel, events),
    (error: unknown) =>
      error instanceof HistoryError && /Unsupported operation "append"/.test(error.message),
  );
});

Deno.test("models without hash and equal get JSON-based ones", () => {
  // A counter whose state is an object: equal states must be recognised by content.
  const counter: Model<{ n: number }, { f: string }, { value: number }> = {
    init: () => ({ n: 0 }),
    step: (state, input, output) => {
      if (input.f === "inc") return [true, { n: state.n + 1 }];
      return [typeof output === "symbol" || output.value === state.n, state];
    },
  };
  const op = (id: number, f: string, call: number, ret: number, value = 0) => ({
    id,
    process: id,
    input: { f },
    output: { value },
    callTime: call,
    returnTime: ret,
  });
  const ops = [op(0, "inc", 0, 10), op(1, "inc", 1, 11), op(2, "get", 12, 13, 2)];
  assert.equal(checkOperations(counter, ops).verdict, "linearizable");
  assert.equal(
    checkOperations(counter, [...ops.slice(0, 2), op(2, "get", 12, 13, 1)]).verdict,
    "not-linearizable",
  );
});

/** Changes the result of one random read or cas, which usually breaks linearizability. */
function corrupt(events: ReturnType<typeof history>, random: () => number) {
  const completions = events
    .map((event, index) => ({ event, index }))
    .filter(({ event }) =>
      event.type === "ok" && event.f === "read" ||
      event.f === "cas" && event.type !== "invoke" && event.type !== "info"
    );
  if (completions.length === 0) return events;
  const { event, index } = completions[Math.floor(random() * completions.length)];
  const changed = event.f === "read"
    ? { ...event, value: event.value === null ? 0 : null }
    : { ...event, type: event.type === "ok" ? "fail" as const : "ok" as const };
  return events.map((e, i) => (i === index ? changed : e));
}
