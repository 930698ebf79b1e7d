/**
 * Cuts a byte stream of `[u32 frameBytes, little-endian][frame]` records into frames, whatever
 * the chunking: a frame may arrive in many reads, a read may hold many frames. Both inbound peer
 * paths use it, the HTTP stream (`raft_handler.ts`) and the peer port (`peer_listener.ts`).
 */

import { concatBytes } from "../../util/bytes.ts";

/** A frame header announcing more than the receiver takes. */
export class FrameTooLarge extends Error {
  constructor(
    readonly frameBytes: number,
    readonly frameBytesMax: number,
    /** The frame's place in the stream, 0 first. */
    readonly frameIndex: number,
  ) {
    super(`Frame of ${frameBytes} bytes (the limit is ${frameBytesMax})`);
  }
}

export class FrameSplitter {
  #pending: Uint8Array = new Uint8Array(0);
  #frames = 0;
  readonly #limit: (frameIndex: number) => number;

  /** `frameBytesMax`: one limit, or one per frame by its index in the stream (0 first). */
  constructor(frameBytesMax: number | ((frameIndex: number) => number)) {
    this.#limit = typeof frameBytesMax === "number" ? () => frameBytesMax : frameBytesMax;
  }

  /**
   * Takes the next chunk and returns the frames it completes, each a copy that outlives
   * `chunk` (callers reuse their read buffer). Throws FrameTooLarge on an oversized header.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const pending = this.#pending.length === 0 ? chunk : concatBytes([this.#pending, chunk]);
    const frames: Uint8Array[] = [];
    let at = 0;
    while (pending.length - at >= 4) {
      const frameBytes = new DataView(pending.buffer, pending.byteOffset + at, 4).getUint32(
        0,
        true,
      );
      const limit = this.#limit(this.#frames);
      if (frameBytes > limit) throw new FrameTooLarge(frameBytes, limit, this.#frames);
      if (pending.length - at - 4 < frameBytes) break;
      frames.push(pending.slice(at + 4, at + 4 + frameBytes));
      at += 4 + frameBytes;
      this.#frames++;
    }
    // The rest of a frame is copied out: the caller's next read reuses the buffer it is in.
    this.#pending = at === pending.length ? new Uint8Array(0) : pending.slice(at);
    return frames;
  }
}

/**
 * A zero-length frame: the sender is ending this stream by choice and lives on (it replaces
 * streams every few seconds), so the receiver must not take the stream's end for the sender's
 * death. A process that dies, or a connection that breaks, ends a stream without one.
 */
export function stayingAliveRecord(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(4);
}

/** One frame as written on a stream: its length, then its bytes. */
export function lengthPrefixed(frame: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(4 + frame.length);
  new DataView(out.buffer).setUint32(0, frame.length, true);
  out.set(frame, 4);
  return out;
}
