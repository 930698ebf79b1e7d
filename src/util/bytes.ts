/** Byte-array helpers. */

/**
 * One new array holding `parts` one after another (never a view into any of them). Takes an
 * array, not rest arguments: a request body may arrive in thousands of chunks.
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The bytes `concatBytesYielding` copies between two turns of the event loop. */
export const YIELD_EVERY_BYTES = 8 * 1024 * 1024;

/**
 * `concatBytes` for hundreds of megabytes on a thread with other work (an executive's Raft loop
 * and HTTP server): the copy goes a slice at a time, with a turn of the event loop between
 * slices, instead of holding the thread for the whole copy (355 MB: 200–400 ms).
 */
export async function concatBytesYielding(
  parts: readonly Uint8Array[],
): Promise<Uint8Array<ArrayBuffer>> {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    for (let from = 0; from < p.length; from += YIELD_EVERY_BYTES) {
      const slice = p.subarray(from, from + YIELD_EVERY_BYTES);
      out.set(slice, at);
      at += slice.length;
      if (at < length) await new Promise((r) => setTimeout(r, 0));
    }
  }
  return out;
}

/** Do `a` and `b` hold the same bytes? */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
