/**
 * The one place that opens LDB files with SQLite, so the driver (`node:sqlite`) and the connection
 * settings every LDB connection needs live together.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";

/** How long a connection waits on a lock held by another connection before failing. */
export const BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens the LDB for the reflector: creates parent directories and the file, switches to WAL.
 * Auto-checkpoint is off because the writer checkpoints on its own schedule (see LdbWriter).
 * `synchronous=NORMAL`: a commit is durable against `kill -9` (it is in the OS's page cache) and
 * atomic always, but is not fsynced; only checkpoints fsync. After a power loss the LDB may be back
 * at an earlier entry, whole and consistent (`_ldb_seq` commits with the data), and the reflector
 * catches up from the ledger, which is the durable copy. An fsync per commit had been the largest
 * part of write → LDB latency under load.
 */
export function openWriterDatabase(path: string): DatabaseSync {
  mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  const mode = db.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string };
  if (mode.journal_mode.toLowerCase() !== "wal") {
    db.close();
    throw new Error(`Cannot open LDB "${path}" in WAL mode (got ${mode.journal_mode})`);
  }
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA wal_autocheckpoint = 0");
  return db;
}

/**
 * Opens the LDB for reading. Readers never checkpoint: only the reflector does, so a reader
 * closing last never rewrites the file under the writer's feet. `query_only` refuses writes even
 * where the file itself is writable.
 */
export function openReaderDatabase(path: string): DatabaseSync {
  const db = new DatabaseSync(path, { readOnly: true });
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.exec("PRAGMA wal_autocheckpoint = 0");
  db.exec("PRAGMA query_only = ON");
  return db;
}
