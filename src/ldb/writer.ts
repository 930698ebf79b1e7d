/**
 * The LDB writer: applies ledger entries to the host-local SQLite file, exactly once and in order.
 *
 * Each entry is applied together with its `_ldb_seq` and `_ldb_last_update` rows, so the applied
 * seq and the data can never disagree: after `kill -9` at any instant the LDB holds exactly the
 * entries up to its `_ldb_seq`. Several entries share one transaction when catching up (one fsync
 * for many entries); each entry still sits in its own savepoint, so an entry whose ops fail leaves
 * nothing of itself behind while the entries before it commit.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { LedgerSqlApplier } from "../ledger/sql.ts";
import type { ChangedRow } from "../ledger/sql.ts";
import type { LedgerEntry, LedgerOp } from "../ledger/types.ts";
import { log } from "../util/log.ts";
import {
  ensureBookkeeping,
  formatLdbTimestamp,
  LDB_LAST_UPDATE_TABLE,
  LDB_LEDGER_UPDATE_NAME,
  LDB_SEQ_ID,
  LDB_SEQ_TABLE,
} from "./bookkeeping.ts";
import { LdbError } from "./errors.ts";
import { BUSY_TIMEOUT_MS, openWriterDatabase } from "./sqlite.ts";

/** Most entries one `applyBatch` call takes (bounds the transaction and the changelog batch). */
export const BATCH_ENTRIES_MAX = 10_000;
/**
 * How long a TRUNCATE checkpoint may wait for readers before giving up until next time. Short,
 * because the wait blocks the next apply: a long reader (a supervisor's snapshot copy) must not
 * pause replication; PASSIVE checkpoints keep the WAL in check meanwhile.
 */
export const TRUNCATE_BUSY_TIMEOUT_MS = 20;

/** A changed row tagged with the ledger seq that changed it: one changelog line. */
export interface SeqChangedRow extends ChangedRow {
  seq: number;
}

export interface LdbWriterOptions {
  /** Apply only ops of these families (ops of others are skipped; the seq still advances). */
  families?: readonly string[];
}

export interface ApplyHooks {
  /**
   * Called inside the transaction, after every entry of the batch applied and before COMMIT,
   * with the rows the batch changed. Throwing rolls the whole batch back (nothing applied).
   * The changelog writes and fsyncs here, so no committed change can miss its line.
   */
  beforeCommit?: (changes: readonly SeqChangedRow[], lastSeq: number) => void;
}

export interface ApplyResult {
  /** `_ldb_seq` after the call. */
  seq: number;
  /** Entries applied by this call. */
  appliedEntries: number;
  /** Entries at or below the applied seq that were skipped as replays. */
  replayedEntries: number;
}

/** Result of `PRAGMA wal_checkpoint`: busy = 1 when it could not finish. */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

/** Applies ledger entries to an LDB file. One writer per file (the reflector). */
export class LdbWriter {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #applier: LedgerSqlApplier;
  readonly #families: ReadonlySet<string> | undefined;
  readonly #setSeq: StatementSync;
  readonly #setLastUpdate: StatementSync;
  readonly #getSeq: StatementSync;
  readonly #log = log("ldb", "writer");
  /** The seq of the last applied entry; equals `_ldb_seq.seq` outside a transaction. */
  #seq: number;
  #lastUpdateMs: number | undefined;
  #closed = false;

  private constructor(path: string, db: DatabaseSync, options: LdbWriterOptions) {
    this.path = path;
    this.#db = db;
    this.#applier = new LedgerSqlApplier(db);
    this.#families = options.families?.length ? new Set(options.families) : undefined;
    this.#setSeq = db.prepare(
      `INSERT OR REPLACE INTO ${LDB_SEQ_TABLE} (id, seq) VALUES (${LDB_SEQ_ID}, ?)`,
    );
    this.#setLastUpdate = db.prepare(
      `INSERT OR REPLACE INTO ${LDB_LAST_UPDATE_TABLE} (name, timestamp) VALUES (?, ?)`,
    );
    this.#getSeq = db.prepare(`SELECT seq FROM ${LDB_SEQ_TABLE} WHERE id = ${LDB_SEQ_ID}`);
    this.#seq = this.#storedSeq();
    if (!Number.isSafeInteger(this.#seq) || this.#seq < 0) {
      throw new Error(`LDB "${path}" has an invalid _ldb_seq ${this.#seq}`);
    }
  }

  /** Opens (creating the file, its parent directories and the bookkeeping tables) an LDB. */
  static open(path: string, options: LdbWriterOptions = {}): LdbWriter {
    const db = openWriterDatabase(path);
    try {
      ensureBookkeeping(db);
      return new LdbWriter(path, db, options);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** The last applied ledger seq (0 for an empty LDB). */
  get seq(): number {
    return this.#seq;
  }

  /** The leader timestamp (unix ms) of the last entry this writer applied, if any. */
  get lastUpdateMs(): number | undefined {
    return this.#lastUpdateMs;
  }

  /**
   * Applies entries in one transaction. Entries at or below the applied seq are skipped with a
   * log line (replays). A gap (an entry beyond applied seq + 1) commits the entries before it and
   * then throws `ldb_gap`; an entry whose ops fail commits the entries before it and throws
   * `ldb_apply_failed` with nothing of the failing entry applied.
   */
  applyBatch(entries: readonly LedgerEntry[], hooks: ApplyHooks = {}): ApplyResult {
    if (this.#closed) throw new Error(`LDB "${this.path}" is closed`);
    if (entries.length > BATCH_ENTRIES_MAX) {
      throw new RangeError(`batch of ${entries.length} entries exceeds ${BATCH_ENTRIES_MAX}`);
    }
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      return this.#applyInTransaction(entries, hooks);
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      this.#applier.reset();
      throw e;
    }
  }

  /** The body of `applyBatch`, inside its transaction; commits or leaves it to roll back. */
  #applyInTransaction(entries: readonly LedgerEntry[], hooks: ApplyHooks): ApplyResult {
    // Replays are judged against the seq stored in the database, read inside the write
    // transaction, not against memory: a second writer on the same file (a misconfigured
    // host) then cannot make this one apply an entry twice.
    const stored = this.#storedSeq();
    if (stored !== this.#seq) {
      this.#log.warn("LDB seq moved from {mine} to {stored} under this writer: another writer?", {
        mine: this.#seq,
        stored,
      });
      this.#seq = stored;
      this.#applier.reset();
    }
    const startSeq = this.#seq;
    let replayed = 0;
    const fresh: LedgerEntry[] = [];
    for (const entry of entries) {
      if (entry.seq <= startSeq + fresh.length) {
        replayed++;
        this.#log.info("Skipped ledger entry {seq}: replay (LDB is at seq {applied})", {
          seq: entry.seq,
          applied: startSeq + fresh.length,
        });
        continue;
      }
      fresh.push(entry);
    }
    if (fresh.length === 0) {
      this.#db.exec("ROLLBACK");
      return { seq: startSeq, appliedEntries: 0, replayedEntries: replayed };
    }

    let failure: LdbError | undefined;
    const changes: SeqChangedRow[] = [];
    let seq = startSeq;
    let lastTs: number | undefined;
    for (const entry of fresh) {
      if (entry.seq !== seq + 1) {
        failure = new LdbError(
          "ldb_gap",
          `Cannot apply ledger entry ${entry.seq}: the LDB is at seq ${seq}, entries ` +
            `${seq + 1}..${entry.seq - 1} are missing`,
        );
        break;
      }
      this.#db.exec("SAVEPOINT ledger_entry");
      try {
        const changed = this.#applier.apply(this.#selectOps(entry.ops));
        this.#setSeq.run(entry.seq);
        this.#setLastUpdate.run(LDB_LEDGER_UPDATE_NAME, formatLdbTimestamp(entry.ts));
        this.#db.exec("RELEASE ledger_entry");
        for (const row of changed) changes.push({ seq: entry.seq, ...row });
        seq = entry.seq;
        lastTs = entry.ts;
      } catch (e) {
        this.#db.exec("ROLLBACK TO ledger_entry");
        this.#db.exec("RELEASE ledger_entry");
        // The applier caches layouts; a rolled-back DDL must not leave a stale one behind.
        this.#applier.reset();
        failure = new LdbError(
          "ldb_apply_failed",
          `Cannot apply ledger entry ${entry.seq}: ${e instanceof Error ? e.message : e}`,
          { cause: e },
        );
        break;
      }
    }
    if (seq > startSeq) hooks.beforeCommit?.(changes, seq);
    this.#db.exec("COMMIT");
    this.#seq = seq;
    if (lastTs !== undefined) this.#lastUpdateMs = lastTs;
    if (failure) throw failure;
    return { seq, appliedEntries: seq - startSeq, replayedEntries: replayed };
  }

  #storedSeq(): number {
    const row = this.#getSeq.get() as { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  #selectOps(ops: readonly LedgerOp[]): readonly LedgerOp[] {
    const families = this.#families;
    if (!families) return ops;
    // create_table ops batched across families carry their own family; filter op by op.
    return ops.filter((op) => families.has(op.family));
  }

  /**
   * Checkpoints the WAL into the database file. PASSIVE never waits (run it periodically while
   * busy); TRUNCATE also empties the WAL file but waits briefly for readers, so run it when idle.
   */
  checkpoint(mode: "PASSIVE" | "TRUNCATE"): CheckpointResult {
    if (mode === "TRUNCATE") this.#db.exec(`PRAGMA busy_timeout = ${TRUNCATE_BUSY_TIMEOUT_MS}`);
    try {
      return this.#db.prepare(`PRAGMA wal_checkpoint(${mode})`)
        .get() as unknown as CheckpointResult;
    } finally {
      if (mode === "TRUNCATE") this.#db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }

  /** Closes the database (SQLite checkpoints and removes the WAL when it is the last user). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
