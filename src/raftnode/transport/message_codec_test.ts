import assert from "node:assert/strict";
import type { Message } from "../../../raft/types.ts";
import { CodecError, decodeMessages, encodeMessages } from "./message_codec.ts";

const conf = {
  voters: ["a", "b"],
  learners: ["c"],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

Deno.test("codec: every Message field round-trips, including byte arrays and empty ones", () => {
  const messages: Message[] = [
    {
      type: "MsgApp",
      from: "a",
      to: "b",
      term: 7,
      logTerm: 6,
      index: 41,
      commit: 40,
      entries: [
        { index: 42, term: 7, type: "normal", data: new Uint8Array([0, 1, 2, 255]) },
        { index: 43, term: 7, type: "conf", data: new Uint8Array(0) },
      ],
    },
    {
      type: "MsgAppResp",
      from: "b",
      to: "a",
      term: 7,
      index: 3,
      reject: true,
      rejectHint: 2,
      logTermHint: 5,
    },
    {
      type: "MsgSnap",
      from: "a",
      to: "c",
      term: 7,
      snapshot: { index: 40, term: 6, conf },
      snapshotOffset: 1024,
      snapshotData: crypto.getRandomValues(new Uint8Array(5000)),
      snapshotDone: false,
    },
    { type: "MsgReadIndex", from: "b", to: "a", term: 7, context: "ctx-1" },
  ];
  assert.deepEqual(decodeMessages(encodeMessages(messages)), messages);
});

Deno.test("codec: fields added later round-trip without codec changes", () => {
  const future = {
    type: "MsgHeartbeat",
    from: "a",
    to: "b",
    term: 1,
    newField: { nested: [new Uint8Array([9, 9]), "x"], flag: true },
  } as unknown as Message;
  assert.deepEqual(decodeMessages(encodeMessages([future])), [future]);
});

Deno.test("codec: truncated or garbled frames are rejected with CodecError", () => {
  const frame = encodeMessages([{
    type: "MsgApp",
    from: "a",
    to: "b",
    term: 1,
    entries: [{ index: 1, term: 1, type: "normal", data: new Uint8Array(10) }],
  }]);
  assert.throws(() => decodeMessages(frame.subarray(0, frame.length - 1)), CodecError);
  const garbled = frame.slice();
  garbled[6] = 0x7b;
  assert.throws(() => decodeMessages(garbled), CodecError);
  assert.throws(() => decodeMessages(new Uint8Array([1, 2])), CodecError);
});
