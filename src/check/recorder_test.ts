import assert from "node:assert/strict";
import { checkEvents } from "./checker.ts";
import { parseJsonLinesHistory } from "./jsonl.ts";
import { kvModel } from "./kv_model.ts";
import { HistoryRecorder } from "./recorder.ts";

Deno.test("a recorded history carries clock times and checks as recorded", () => {
  let nowMs = 100;
  const recorder = new HistoryRecorder(() => nowMs++);
  const write = recorder.invoke(1, "write", 3, "a");
  const read = recorder.invoke(2, "read", undefined, "a");
  read.ok(3);
  write.ok(3);
  recorder.invoke(1, "cas", [3, 4], "a").info();
  assert.deepEqual(recorder.events.map((e) => [e.process, e.type, e.time]), [
    [1, "invoke", 100],
    [2, "invoke", 101],
    [2, "ok", 102],
    [1, "ok", 103],
    [1, "invoke", 104],
    [1, "info", 105],
  ]);
  const events = parseJsonLinesHistory(recorder.toJsonLines());
  assert.deepEqual(events, recorder.events);
  assert.equal(checkEvents(kvModel, events).verdict, "linearizable");
});

Deno.test("the recorder refuses what a sequential client cannot do", () => {
  let nowMs = 0;
  const recorder = new HistoryRecorder(() => nowMs);
  const op = recorder.invoke(1, "read");
  assert.throws(() => recorder.invoke(1, "read"), /process 1 has one in flight/);
  op.ok(null);
  assert.throws(() => op.fail(), /completed twice/);
  nowMs = -1;
  assert.throws(() => recorder.invoke(2, "read"), /Clock went backwards/);
});
