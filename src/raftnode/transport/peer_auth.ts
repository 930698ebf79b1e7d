/** Peers prove the shared cluster secret with a header, checked in constant time. */

import { createHash, timingSafeEqual } from "node:crypto";

/** The header that carries the cluster secret on peer requests. */
export const SECRET_HEADER = "x-ctl-cluster-secret";

const digests = new Map<string, Uint8Array>();

/** True when `presented` equals `secret`; the time taken does not depend on where they differ. */
export function secretMatches(presented: string | null, secret: string): boolean {
  if (presented === null) return false;
  // Hashing first gives equal-length inputs, so the length of the secret does not leak either.
  const a = createHash("sha256").update(presented).digest();
  let b = digests.get(secret);
  if (b === undefined) {
    b = createHash("sha256").update(secret).digest();
    if (digests.size < 16) digests.set(secret, b);
  }
  return timingSafeEqual(a, b);
}
