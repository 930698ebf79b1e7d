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
