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

/** A stored hash with its hex decoded, kept per stored object: every mutation checks one. */
const decoded = new WeakMap<SecretHash, { salt: Buffer; expected: Buffer }>();

/** Whether `secret` matches the stored hash, compared in constant time. */
export function verifySecret(stored: SecretHash, secret: string): boolean {
  let d = decoded.get(stored);
  if (!d) {
    d = {
      salt: Buffer.from(stored.saltHex, "hex"),
      expected: Buffer.from(stored.secretHashHex, "hex"),
    };
    decoded.set(stored, d);
  }
  const actual = digest(d.salt, secret);
  return d.expected.length === actual.length && timingSafeEqual(d.expected, actual);
}

/** Constant-time equality of two strings (for tokens). */
export function constantTimeEqual(a: string, b: string): boolean {
  // Hashing first gives equal lengths, so the comparison time does not reveal the length either.
  const ha = createHash("sha256").update(a, "utf8").digest();
  const hb = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}
