/**
 * Typed errors of the LDB writer and reader. Each carries a stable `code` that the HTTP layers
 * (sidecar, reflector status) and the CLI map to a status or exit code in one place.
 */

/** Stable codes of expected LDB failures. */
export type LdbErrorCode =
  /** An entry at or below the applied seq was offered again (skipped, never re-applied). */
  | "ldb_replay"
  /** An entry skipped ahead of applied seq + 1: the ledger stream lost entries. */
  | "ldb_gap"
  /** A ledger entry's ops failed to apply; nothing of it was applied. */
  | "ldb_apply_failed"
  /** The family___table named by a read does not exist in the LDB. */
  | "table_not_found"
  /** The key given to a read has the wrong number of parts or a value of the wrong type. */
  | "bad_key"
  /** `waitForSeq` ran out of time before the LDB reached the seq. */
  | "seq_timeout"
  /** The LDB file is missing or is not an LDB (no `_ldb_seq`). */
  | "ldb_unavailable"
  /** A statement given to a read-only tool (`ctl query`) would write. */
  | "read_only";

/** An expected LDB failure with a stable code. */
export class LdbError extends Error {
  override name = "LdbError";
  readonly code: LdbErrorCode;

  constructor(code: LdbErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
