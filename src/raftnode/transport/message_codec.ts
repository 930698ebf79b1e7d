/**
 * A generic binary codec for batches of Raft messages.
 *
 * Frame: `[u32 headerBytes][header JSON][u32 blobCount][u32 blobBytes × blobCount][blobs…]`
 * (little endian). The header is the messages as JSON with every `Uint8Array` replaced by
 * `{"$bytes": n}`, a reference to blob n of the trailer. Byte arrays therefore travel raw (no
 * base64) and any field added to `Message` later round-trips without codec changes.
 */

import type { Message } from "../../../raft/types.ts";

const BYTES_KEY = "$bytes";
/** A frame announcing more blobs than this is corrupt. */
const BLOB_COUNT_MAX = 1_000_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Thrown when a frame cannot be decoded; the HTTP layer maps it to 400. */
export class CodecError extends Error {
  readonly code = "RAFT_CODEC";
  constructor(message: string) {
    super(message);
    this.name = "CodecError";
  }
}

/** Encodes messages into one frame. */
export function encodeMessages(messages: readonly Message[]): Uint8Array<ArrayBuffer> {
  const blobs: Uint8Array[] = [];
  const header = encoder.encode(JSON.stringify(messages.map((m) => pullBlobs(m, blobs))));
  let blobBytes = 0;
  for (const b of blobs) blobBytes += b.length;
  const out = new Uint8Array(4 + header.length + 4 + 4 * blobs.length + blobBytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, header.length, true);
  out.set(header, 4);
  let at = 4 + header.length;
  view.setUint32(at, blobs.length, true);
  at += 4;
  for (const b of blobs) {
    view.setUint32(at, b.length, true);
    at += 4;
  }
  for (const b of blobs) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** Decodes a frame made by `encodeMessages`. Byte arrays are views into `frame`. */
export function decodeMessages(frame: Uint8Array): Message[] {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const need = (at: number, bytes: number) => {
    if (at + bytes > frame.length) throw new CodecError(`Cannot decode frame: truncated at ${at}`);
  };
  need(0, 4);
  const headerBytes = view.getUint32(0, true);
  need(4, headerBytes + 4);
  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(frame.subarray(4, 4 + headerBytes)));
  } catch (err) {
    throw new CodecError(`Cannot decode frame header: ${(err as Error).message}`);
  }
  let at = 4 + headerBytes;
  const blobCount = view.getUint32(at, true);
  at += 4;
  if (blobCount > BLOB_COUNT_MAX) throw new CodecError(`Cannot decode frame: ${blobCount} blobs`);
  need(at, 4 * blobCount);
  const lengths: number[] = [];
  for (let i = 0; i < blobCount; i++) lengths.push(view.getUint32(at + 4 * i, true));
  at += 4 * blobCount;
  const blobs: Uint8Array[] = [];
  for (const len of lengths) {
    need(at, len);
    blobs.push(frame.subarray(at, at + len));
    at += len;
  }
  if (at !== frame.length) {
    throw new CodecError(`Cannot decode frame: ${frame.length - at} extra bytes`);
  }
  if (!Array.isArray(header)) throw new CodecError("Cannot decode frame: header is not a list");
  return header.map((m) => pushBlobs(m, blobs) as Message);
}

function pullBlobs(value: unknown, blobs: Uint8Array[]): unknown {
  if (value instanceof Uint8Array) {
    blobs.push(value);
    return { [BYTES_KEY]: blobs.length - 1 };
  }
  if (Array.isArray(value)) return value.map((v) => pullBlobs(v, blobs));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === BYTES_KEY) throw new RangeError(`Cannot encode a message with a "${k}" field`);
      if (v !== undefined) out[k] = pullBlobs(v, blobs);
    }
    return out;
  }
  return value;
}

function pushBlobs(value: unknown, blobs: Uint8Array[]): unknown {
  if (Array.isArray(value)) return value.map((v) => pushBlobs(v, blobs));
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const ref = obj[BYTES_KEY];
    if (ref !== undefined) {
      if (typeof ref !== "number" || blobs[ref] === undefined) {
        throw new CodecError(`Cannot decode frame: bad blob reference ${String(ref)}`);
      }
      return blobs[ref];
    }
    for (const k of Object.keys(obj)) obj[k] = pushBlobs(obj[k], blobs);
    return obj;
  }
  return value;
}
