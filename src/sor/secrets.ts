/**
 * Writer secrets: stored as SHA-256 of a random per-writer salt followed by the secret, and
 * compared in constant time. A fast hash is deliberate: secrets are checked on every mutation,
 * and writers' secrets are machine-generated, not human passwords.
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** Salt length for new writers. */
export const SALT_BYTES = 16;

/** A stored secret. */
export interface SecretHash {
  saltHex: string;
  secretHashHex: string;
}

function digest(salt: Buffer, secret: string): Buffer {
  return createHash("sha256").update(salt).update(secret, "utf8").digest();
}

/** Hashes `secret` with a fresh random salt (or the given one, for tests). */
export function hashSecret(secret: string, saltHex?: string): SecretHash {
  const salt = saltHex ?? randomBytes(SALT_BYTES).toString("hex");
  return { saltHex: salt, secretHashHex: digest(Buffer.from(salt, "hex"), secret).toString("hex") };
}

/**
 * A stored hash with its hex decoded, and the secrets already found to match it, kept per stored
 * object: every mutation checks one, and a SHA-256 through node:crypto took ~4% of a leader's CPU
 * under load. A secret seen to match is found again by a Set lookup, which compares strings only
 * on a hash match, so its time says nothing about how much of a wrong secret is right.
 */
const decoded = new WeakMap<
  SecretHash,
  { salt: Buffer; expected: Buffer; accepted: Set<string> }
>();

/** Matching secrets remembered per stored hash (a writer has one; rotation briefly two). */
const ACCEPTED_MAX = 4;

/** Whether `secret` matches the stored hash, compared in constant time. */
export function verifySecret(stored: SecretHash, secret: string): boolean {
  let d = decoded.get(stored);
  if (!d) {
    d = {
      salt: Buffer.from(stored.saltHex, "hex"),
      expected: Buffer.from(stored.secretHashHex, "hex"),
      accepted: new Set(),
    };
    decoded.set(stored, d);
  }
  if (d.accepted.has(secret)) return true;
  const actual = digest(d.salt, secret);
  const ok = d.expected.length === actual.length && timingSafeEqual(d.expected, actual);
  if (ok && d.accepted.size < ACCEPTED_MAX) d.accepted.add(secret);
  return ok;
}

/** Constant-time equality of two strings (for tokens). */
export function constantTimeEqual(a: string, b: string): boolean {
  // Hashing first gives equal lengths, so the comparison time does not reveal the length either.
  const ha = createHash("sha256").update(a, "utf8").digest();
  const hb = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}
