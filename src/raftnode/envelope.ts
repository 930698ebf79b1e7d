/**
 * What the runtime wraps around application data in log entries and snapshots.
 *
 * Normal entry data: empty (the leader's no-op), `[0][u8 originBytes][origin][f64 seq][payload]`
 * (an application proposal, tagged so its proposer can match the apply result to the caller),
 * or `[1][JSON {id, url}]` (the peer registry: the URL of a member being added).
 * Snapshot data: `[u32 peersBytes][peers JSON][state machine snapshot]`, so a member restored
 * from a snapshot learns every peer's URL.
 */

import type { NodeId } from "../../raft/types.ts";
import { concatBytes } from "../util/bytes.ts";

const KIND_APP = 0;
const KIND_PEER = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A decoded normal entry. */
export type EntryPayload =
  | { kind: "noop" }
  | { kind: "app"; origin: NodeId; seq: number; payload: Uint8Array }
  | { kind: "peer"; id: NodeId; url: string };

/** Wraps an application proposal. */
export function encodeAppEntry(origin: NodeId, seq: number, payload: Uint8Array): Uint8Array {
  const o = encoder.encode(origin);
  if (o.length > 255) throw new RangeError(`Node id "${origin}" is longer than 255 bytes`);
  const out = new Uint8Array(2 + o.length + 8 + payload.length);
  out[0] = KIND_APP;
  out[1] = o.length;
  out.set(o, 2);
  new DataView(out.buffer).setFloat64(2 + o.length, seq, true);
  out.set(payload, 2 + o.length + 8);
  return out;
}

/** Wraps a peer registry record. */
export function encodePeerEntry(id: NodeId, url: string): Uint8Array {
  const json = encoder.encode(JSON.stringify({ id, url }));
  const out = new Uint8Array(1 + json.length);
  out[0] = KIND_PEER;
  out.set(json, 1);
  return out;
}

/** Unwraps a normal entry's data. Unknown kinds are treated as no-ops by the caller. */
export function decodeEntry(data: Uint8Array): EntryPayload | null {
  if (data.length === 0) return { kind: "noop" };
  if (data[0] === KIND_APP && data.length >= 10) {
    const n = data[1];
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return {
      kind: "app",
      origin: decoder.decode(data.subarray(2, 2 + n)),
      seq: view.getFloat64(2 + n, true),
      payload: data.subarray(2 + n + 8),
    };
  }
  if (data[0] === KIND_PEER) {
    const { id, url } = JSON.parse(decoder.decode(data.subarray(1)));
    return { kind: "peer", id: String(id), url: String(url) };
  }
  return null;
}

/** What goes in front of the state machine's snapshot: the peer registry, length-prefixed. */
export function encodeSnapshotHeader(peers: Record<NodeId, string>): Uint8Array {
  const json = encoder.encode(JSON.stringify(peers));
  const out = new Uint8Array(4 + json.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  return out;
}

/** Wraps the state machine's snapshot with the peer registry. */
export function encodeSnapshotData(peers: Record<NodeId, string>, state: Uint8Array): Uint8Array {
  return concatBytes([encodeSnapshotHeader(peers), state]);
}

/** Unwraps snapshot data. An empty buffer (a core's empty snapshot) holds nothing. */
export function decodeSnapshotData(
  data: Uint8Array,
): { peers: Record<NodeId, string>; state: Uint8Array } {
  if (data.length === 0) return { peers: {}, state: data };
  const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
  return {
    peers: JSON.parse(decoder.decode(data.subarray(4, 4 + n))),
    state: data.subarray(4 + n),
  };
}
