/**
 * Online LDB snapshots: a consistent copy of the LDB taken while the reflector keeps writing.
 *
 * `VACUUM INTO` runs inside one read transaction on a read-only connection. In WAL mode a reader
 * never blocks the writer: the reflector keeps committing to the WAL while the copy reads the
 * database as of the transaction's start. The one interplay is checkpointing: a checkpoint
 * cannot copy WAL frames past the oldest reader's mark, so the WAL grows during the copy, and a
 * TRUNCATE checkpoint waits for the reader (the LDB writer bounds that wait at 100 ms and retries
 * later). SQLite's backup API was measured as the alternative: it restarts whenever another
 * process writes between steps (or holds the read lock as long when done in one step), and
 * node:sqlite's `backup()` runs on the calling thread too, so it buys nothing here.
 *
 * The copy is a compact file in rollback-journal mode (VACUUM INTO output), ready to ship.
 */
import { DatabaseSync } from "node:sqlite";
import { SnapshotError } from "./errors.ts";
import { exists, removeQuietly } from "./fs_util.ts";

/** How long the snapshot's read transaction waits for a lock (only on WAL recovery). */
const SNAPSHOT_BUSY_TIMEOUT_MS = 5_000;

/** A snapshot file just taken. */
export interface LdbSnapshot {
  /** The copy (uncompressed SQLite). */
  path: string;
  /** `_ldb_seq` read from the copy itself (0 when no entry was ever applied). */
  seq: number;
  sizeBytes: number;
  /** Wall time of the copy. */
  durationMs: number;
}

/**
 * Reads `_ldb_seq` (row id = 1) of an open LDB; 0 when the row is absent.
 * Throws SnapshotError `ldb_unavailable` when the table is missing (not an LDB).
 */
export function readLdbSeq(db: DatabaseSync, path: string): number {
  const table = db.prepare(
    "SELECT 1 AS ok FROM sqlite_master WHERE type = 'table' AND name = '_ldb_seq'",
  ).get();
  if (!table) throw new SnapshotError("ldb_unavailable", `"${path}" is not an LDB: no _ldb_seq`);
  const row = db.prepare("SELECT seq FROM _ldb_seq WHERE id = 1").get() as
    | { seq: number | bigint }
    | undefined;
  return row ? Number(row.seq) : 0;
}

/** Opens an LDB read-only. Not through src/ldb's reader: its `query_only` refuses VACUUM INTO. */
function openSource(ldbPath: string): DatabaseSync {
  const db = new DatabaseSync(ldbPath, { readOnly: true });
  db.exec(`PRAGMA busy_timeout = ${SNAPSHOT_BUSY_TIMEOUT_MS}`);
  return db;
}

/** The current `_ldb_seq` of a live LDB (cheap: lets the supervisor skip unchanged LDBs). */
export async function currentLdbSeq(ldbPath: string): Promise<number> {
  if (!(await exists(ldbPath))) {
    throw new SnapshotError("ldb_unavailable", `LDB "${ldbPath}" does not exist`);
  }
  const db = openSource(ldbPath);
  try {
    return readLdbSeq(db, ldbPath);
  } finally {
    db.close();
  }
}

/**
 * Takes a consistent snapshot of the LDB at `ldbPath` into `outPath` (which must not exist),
 * without stopping the LDB's writer, and returns the seq the copy holds.
 *
 * Runs synchronously on the calling thread for the duration of the copy (about 1 s per 300 MB
 * on a laptop disk): call it from the supervisor process, not from a latency-sensitive one.
 */
export async function takeLdbSnapshot(ldbPath: string, outPath: string): Promise<LdbSnapshot> {
  if (!(await exists(ldbPath))) {
    throw new SnapshotError("ldb_unavailable", `Cannot snapshot "${ldbPath}": it does not exist`);
  }
  if (await exists(outPath)) {
    throw new SnapshotError(
      "snapshot_exists",
      `Cannot snapshot "${ldbPath}" into "${outPath}": the file already exists`,
    );
  }
  const started = performance.now();
  let source: DatabaseSync;
  try {
    source = openSource(ldbPath);
  } catch (e) {
    throw new SnapshotError("ldb_unavailable", `Cannot open LDB "${ldbPath}": ${errText(e)}`, {
      cause: e,
    });
  }
  try {
    readLdbSeq(source, ldbPath);
    source.prepare("VACUUM INTO ?").run(outPath);
  } catch (e) {
    await removeQuietly(outPath);
    if (e instanceof SnapshotError) throw e;
    throw new SnapshotError(
      "snapshot_failed",
      `Cannot snapshot "${ldbPath}" into "${outPath}": ${errText(e)}`,
      { cause: e },
    );
  } finally {
    source.close();
  }
  const durationMs = performance.now() - started;
  const copy = new DatabaseSync(outPath, { readOnly: true });
  try {
    const seq = readLdbSeq(copy, outPath);
    const { size } = await Deno.stat(outPath);
    return { path: outPath, seq, sizeBytes: size, durationMs };
  } finally {
    copy.close();
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
