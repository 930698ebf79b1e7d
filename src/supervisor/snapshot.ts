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
import { startBackgroundSync } from "../util/background_sync.ts";
import { SnapshotError } from "./errors.ts";
import { exists, removeQuietly } from "../util/durable_file.ts";

/** How long the snapshot's read transaction waits for a lock (only on WAL recovery). */
const SNAPSHOT_BUSY_TIMEOUT_MS = 5_000;

/** How often the copy is flushed while SQLite writes it (see background_sync.ts). */
export const FLUSH_EVERY_MS = 50;
/** Below this LDB size the copy is not flushed in the background (its writeback is small). */
export const FLUSH_MIN_LDB_BYTES = 64 * 1024 * 1024;

/** Options of `takeLdbSnapshot`. */
export interface SnapshotOptions {
  /** Flush the copy from a worker thread this often; 0 turns it off (default FLUSH_EVERY_MS). */
  flushEveryMs?: number;
}

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
 * The copy blocks the calling thread (measured 2–6 s for 1 GB on a shared VM disk): call it from
 * the supervisor process, not from a latency-sensitive one. A worker thread flushes the copy as
 * it grows, which keeps the LDB writer's fsyncs from stalling behind its writeback.
 */
export async function takeLdbSnapshot(
  ldbPath: string,
  outPath: string,
  options: SnapshotOptions = {},
): Promise<LdbSnapshot> {
  const flushEveryMs = options.flushEveryMs ?? FLUSH_EVERY_MS;
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
  // A worker costs ~50 ms to start: only worth it when the copy is large.
  const { size: ldbBytes } = await Deno.stat(ldbPath);
  const flusher = flushEveryMs > 0 && ldbBytes >= FLUSH_MIN_LDB_BYTES
    ? startBackgroundSync(outPath, flushEveryMs)
    : undefined;
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
    await flusher?.stop();
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
