/**
 * Binary records of the segment log, each framed as
 * `[u32 payloadBytes][u32 crc32(payload)][payload]` (little endian).
 *
 * Payload kinds: an entry (`1, f64 index, f64 term, u8 type, data…`), a hard state
 * (`2, f64 term, f64 commit, u8 hasVote, vote utf8…`), or a snapshot marker (`3, f64 index,
 * f64 term`) meaning "the log restarts after this snapshot point". Indexes and terms are f64
 * because they stay below 2^53, where f64 is exact.
 */

import { crc32 } from "node:zlib";
import type { Entry, HardState } from "../../../raft/types.ts";

/** Bytes of the frame header that precedes each payload. */
export const RECORD_HEADER_BYTES = 8;
/** No single record may be larger; a length above it marks a corrupt frame. */
export const RECORD_PAYLOAD_BYTES_MAX = 64 * 1024 * 1024;

const KIND_ENTRY = 1;
const KIND_HARD_STATE = 2;
const KIND_MARKER = 3;
const MARKER_BYTES = 1 + 8 + 8;
const ENTRY_FIXED_BYTES = 1 + 8 + 8 + 1;
const HARD_STATE_FIXED_BYTES = 1 + 8 + 8 + 1;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A decoded record. */
export type LogRecord =
  | { kind: "entry"; entry: Entry }
  | { kind: "hardState"; hardState: HardState }
  | { kind: "marker"; index: number; term: number };

/** Encodes a snapshot marker record: the log continues after (index, term). */
export function encodeMarker(index: number, term: number): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_BYTES + MARKER_BYTES);
  const view = new DataView(out.buffer);
  view.setUint8(RECORD_HEADER_BYTES, KIND_MARKER);
  view.setFloat64(RECORD_HEADER_BYTES + 1, index, true);
  view.setFloat64(RECORD_HEADER_BYTES + 9, term, true);
  frame(out, view, 0, MARKER_BYTES);
  return out;
}

/** Encodes entries and an optional hard state into one buffer, ready for a single write. */
export function encodeRecords(entries: readonly Entry[], hardState: HardState | null): Uint8Array {
  const vote = hardState?.vote != null ? encoder.encode(hardState.vote) : new Uint8Array(0);
  let total = 0;
  for (const e of entries) total += RECORD_HEADER_BYTES + ENTRY_FIXED_BYTES + e.data.length;
  if (hardState) total += RECORD_HEADER_BYTES + HARD_STATE_FIXED_BYTES + vote.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const e of entries) {
    const payloadBytes = ENTRY_FIXED_BYTES + e.data.length;
    if (payloadBytes > RECORD_PAYLOAD_BYTES_MAX) {
      throw new RangeError(`Cannot encode entry ${e.index}: ${payloadBytes} bytes is too large`);
    }
    const p = at + RECORD_HEADER_BYTES;
    view.setUint8(p, KIND_ENTRY);
    view.setFloat64(p + 1, e.index, true);
    view.setFloat64(p + 9, e.term, true);
    view.setUint8(p + 17, e.type === "conf" ? 1 : 0);
    out.set(e.data, p + ENTRY_FIXED_BYTES);
    frame(out, view, at, payloadBytes);
    at += RECORD_HEADER_BYTES + payloadBytes;
  }
  if (hardState) {
    const payloadBytes = HARD_STATE_FIXED_BYTES + vote.length;
    const p = at + RECORD_HEADER_BYTES;
    view.setUint8(p, KIND_HARD_STATE);
    view.setFloat64(p + 1, hardState.term, true);
    view.setFloat64(p + 9, hardState.commit, true);
    view.setUint8(p + 17, hardState.vote != null ? 1 : 0);
    out.set(vote, p + HARD_STATE_FIXED_BYTES);
    frame(out, view, at, payloadBytes);
    at += RECORD_HEADER_BYTES + payloadBytes;
  }
  return out;
}

function frame(out: Uint8Array, view: DataView, at: number, payloadBytes: number): void {
  view.setUint32(at, payloadBytes, true);
  const payload = out.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + payloadBytes);
  view.setUint32(at + 4, crc32(payload), true);
}

/** Result of scanning a buffer: the valid records and where the valid prefix ends. */
export interface ScanResult {
  records: LogRecord[];
  /** Byte offset just after the last valid record. */
  validBytes: number;
  /** Why scanning stopped before the end of the buffer, or null when it reached the end. */
  problem: string | null;
}

/** Decodes records from `buf` until its end or the first torn, corrupt or unknown record. */
export function scanRecords(buf: Uint8Array): ScanResult {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: LogRecord[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < RECORD_HEADER_BYTES) {
      return { records, validBytes: at, problem: `torn record header at byte ${at}` };
    }
    const payloadBytes = view.getUint32(at, true);
    if (payloadBytes === 0 || payloadBytes > RECORD_PAYLOAD_BYTES_MAX) {
      return { records, validBytes: at, problem: `invalid record length ${payloadBytes} at ${at}` };
    }
    const start = at + RECORD_HEADER_BYTES;
    if (buf.length - start < payloadBytes) {
      return { records, validBytes: at, problem: `torn record at byte ${at}` };
    }
    const payload = buf.subarray(start, start + payloadBytes);
    if (crc32(payload) !== view.getUint32(at + 4, true)) {
      return { records, validBytes: at, problem: `checksum mismatch at byte ${at}` };
    }
    const record = decodePayload(payload);
    if (record === null) {
      return { records, validBytes: at, problem: `unknown record at byte ${at}` };
    }
    records.push(record);
    at = start + payloadBytes;
  }
  return { records, validBytes: at, problem: null };
}

function decodePayload(p: Uint8Array): LogRecord | null {
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const kind = p[0];
  if (kind === KIND_ENTRY && p.length >= ENTRY_FIXED_BYTES) {
    const type = p[17] === 1 ? "conf" : "normal";
    return {
      kind: "entry",
      entry: {
        index: view.getFloat64(1, true),
        term: view.getFloat64(9, true),
        type,
        data: p.slice(ENTRY_FIXED_BYTES),
      },
    };
  }
  if (kind === KIND_HARD_STATE && p.length >= HARD_STATE_FIXED_BYTES) {
    let vote: string | null = null;
    if (p[17] === 1) {
      try {
        vote = decoder.decode(p.subarray(HARD_STATE_FIXED_BYTES));
      } catch {
        return null;
      }
    }
    return {
      kind: "hardState",
      hardState: { term: view.getFloat64(1, true), commit: view.getFloat64(9, true), vote },
    };
  }
  if (kind === KIND_MARKER && p.length === MARKER_BYTES) {
    return { kind: "marker", index: view.getFloat64(1, true), term: view.getFloat64(9, true) };
  }
  return null;
}
