import assert from "node:assert/strict";
import { eventsToOperations, HistoryError, UNKNOWN } from "./history.ts";
import { history } from "./test_histories.ts";

Deno.test("events pair per process into operations with their intervals", () => {
  const ops = eventsToOperations(history(
    [0, "invoke", "write", 1],
    [1, "invoke", "read"],
    [1, "ok", "read", null],
    [0, "ok", "write", 1],
  ));
  assert.deepEqual(ops, [
    {
      id: 0,
      process: 0,
      input: { f: "write", value: 1 },
      output: { type: "ok", value: 1 },
      callTime: 0,
      returnTime: 3,
    },
    {
      id: 1,
      process: 1,
      input: { f: "read", value: undefined },
      output: { type: "ok", value: null },
      callTime: 1,
      returnTime: 2,
    },
  ]);
});

Deno.test("info and missing completions give unknown outputs returning at infinity", () => {
  const ops = eventsToOperations(history(
    [0, "invoke", "write", 1],
    [0, "info", "write"],
    [0, "invoke", "write", 2],
    [1, "invoke", "cas", [1, 2], "k"],
  ));
  assert.deepEqual(ops.map((op) => [op.id, op.output, op.returnTime]), [
    [0, UNKNOWN, Infinity],
    [1, UNKNOWN, Infinity],
    [2, UNKNOWN, Infinity],
  ]);
  assert.deepEqual(ops[2].input, { f: "cas", key: "k", value: [1, 2] });
});

Deno.test("timestamps order events when every event has one", () => {
  const ops = eventsToOperations([
    { process: 1, type: "ok", f: "read", value: 3, time: 30 },
    { process: 1, type: "invoke", f: "read", time: 10 },
    { process: 2, type: "invoke", f: "write", value: 3, time: 5 },
    { process: 2, type: "ok", f: "write", time: 20 },
  ]);
  assert.deepEqual(ops.map((op) => [op.input.f, op.callTime, op.returnTime]), [
    ["write", 5, 20],
    ["read", 10, 30],
  ]);
  assert.throws(
    () =>
      eventsToOperations([
        { process: 1, type: "invoke", f: "read", time: 1 },
        { process: 1, type: "ok", f: "read" },
      ]),
    /1 of 2 events have a "time"/,
  );
});

Deno.test("malformed pairings are history errors naming the event", () => {
  assert.throws(
    () => eventsToOperations(history([0, "invoke", "read"], [0, "invoke", "write", 1])),
    (error: unknown) =>
      error instanceof HistoryError && /process 0 invoked "write" at event 1/.test(error.message),
  );
  assert.throws(
    () => eventsToOperations(history([0, "ok", "read", 1])),
    /process 0 completed "read" \(ok\) at event 0 without a pending invocation/,
  );
  assert.throws(
    () => eventsToOperations(history([0, "invoke", "read"], [0, "ok", "write", 1])),
    /invoked "read" at event 0 but completed "write" at event 1/,
  );
});
