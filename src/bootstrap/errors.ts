/**
 * Typed errors of bootstrap. The caller (the reflector) decides what a failure means: usually
 * "replay the whole ledger from seq 0 instead".
 */

/** Stable codes of bootstrap failures. */
export type BootstrapErrorCode =
  /** The URL is not `file://`, `http://` or `https://`. Not retried. */
  | "bad_url"
  /** The LDB already exists and `overwrite` was not asked for. Not retried. */
  | "ldb_exists"
  /** Nothing is published at the URL (no manifest, 404). */
  | "not_found"
  /** The manifest or the snapshot could not be fetched (network, HTTP status, I/O). */
  | "fetch_failed"
  /** The manifest (or the snapshot headers) is malformed. */
  | "bad_manifest"
  /** The downloaded bytes' SHA-256 or size differs from the published one. */
  | "checksum_mismatch"
  /** The bytes do not decompress, or are not an LDB, or hold another seq than published. */
  | "bad_snapshot"
  /** The snapshot is larger than the configured limit. */
  | "too_large"
  /** The verified snapshot could not be renamed into place (I/O). */
  | "install_failed"
  /** The caller aborted. Not retried. */
  | "aborted";

/** A bootstrap failure; after retries, `attempts` says how many tries were made. */
export class BootstrapError extends Error {
  override name = "BootstrapError";
  readonly code: BootstrapErrorCode;
  attempts = 1;

  constructor(code: BootstrapErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** Codes worth another try: the next try may see a fixed or newer publication. */
export function isRetryable(code: BootstrapErrorCode): boolean {
  return code !== "bad_url" && code !== "ldb_exists" && code !== "aborted";
}
