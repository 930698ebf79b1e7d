import assert from "node:assert/strict";
import {
  decodeEntry,
  decodeSnapshotData,
  encodeAppEntry,
  encodePeerEntry,
  encodeSnapshotData,
} from "./envelope.ts";

Deno.test("envelope: app, peer and no-op entries round-trip", () => {
  const payload = new Uint8Array([0, 1, 2, 250]);
  assert.deepEqual(decodeEntry(encodeAppEntry("a/1234", 2 ** 40 + 3, payload)), {
    kind: "app",
    origin: "a/1234",
    seq: 2 ** 40 + 3,
    payload,
  });
  assert.deepEqual(decodeEntry(encodePeerEntry("d", "http://127.0.0.1:9")), {
    kind: "peer",
    id: "d",
    url: "http://127.0.0.1:9",
  });
  assert.deepEqual(decodeEntry(new Uint8Array(0)), { kind: "noop" });
  assert.equal(decodeEntry(new Uint8Array([7, 1])), null);
});

Deno.test("envelope: snapshot data carries the peer registry beside the state", () => {
  const state = new Uint8Array([9, 8, 7]);
  const peers = { a: "http://x:1", b: "http://y:2" };
  assert.deepEqual(decodeSnapshotData(encodeSnapshotData(peers, state)), { peers, state });
  assert.deepEqual(decodeSnapshotData(new Uint8Array(0)), { peers: {}, state: new Uint8Array(0) });
});
