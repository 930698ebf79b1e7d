/**
 * Typed errors of the supervisor (snapshots and their publication). Each carries a stable `code`
 * so the CLI and logs can tell an expected condition from a bug.
 */

/** Stable codes of expected snapshot and publication failures. */
export type SnapshotErrorCode =
  /** The LDB file is missing or is not an LDB (no `_ldb_seq`). */
  | "ldb_unavailable"
  /** The output path of a snapshot already exists (a snapshot never overwrites a file). */
  | "snapshot_exists"
  /** SQLite failed to copy the LDB (disk full, I/O error, lock timeout). */
  | "snapshot_failed"
  /** The snapshot's seq is older than the one already published: publishing it would go back. */
  | "snapshot_stale"
  /** The `--snapshot-url` is not a `file://`, `http://` or `https://` URL. */
  | "bad_target_url"
  /** The target's `latest.json` exists but is not a manifest we understand. */
  | "bad_manifest"
  /** Writing to the target failed (I/O error, HTTP error status, network error). */
  | "publish_failed";

/** An expected supervisor failure with a stable code. */
export class SnapshotError extends Error {
  override name = "SnapshotError";
  readonly code: SnapshotErrorCode;

  constructor(code: SnapshotErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
