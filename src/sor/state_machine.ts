/**
 * The system of record as a Raft state machine over one SQLite file.
 *
 * `apply(index, data)` is a pure function of (entry, database): every verdict (validation,
 * cookie compare-and-set, table size limit, writer rate limit) uses only the entry's bytes,
 * including the leader's `ts`, and the database, so every replica reaches the same one. A
 * batch's data changes, ledger entries and applied index go into SQLite together, so a restart
 * resumes exactly after the last applied entry. A failed command changes nothing (a savepoint
 * undoes it; a mutation is refused before its first write) and still records its index: a
 * failure is a deterministic outcome too.
 *
 * Batches share SQLite transactions: a transaction stays open for up to `commitEveryMs` (or
 * COMMIT_ENTRIES_MAX entries) and its COMMIT writes every page the batches changed once. A
 * COMMIT cost the leader 30–40 µs on each write's path at one client; the batches are Raft-
 * committed already, so a crash that loses the open transaction only rolls the SoR back to an
 * earlier applied index, and the Raft log re-applies from there (the log is compacted only
 * behind snapshots, copied from committed state). Readers on this connection see every applied
 * batch at once; other connections (snapshot copies, the checkpointer) see committed ones.
 */
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import type { SQLInputValue, StatementSync } from "node:sqlite";
import { LedgerSqlApplier } from "../ledger/sql.ts";
import type { Cell, LedgerEntry, LedgerOp } from "../ledger/types.ts";
import { physicalTableName } from "../ledger/types.ts";
import { cellToSql, quoteIdent, rowChunks, type TableLayout } from "../ledger/sql.ts";
import {
  type ApplyResult,
  decodeCommand,
  PreparedCommand,
  type PreparedMutation,
  type SorCommand,
} from "./commands.ts";
import { CtlError } from "./errors.ts";
import { SorCatalog, type TableLimit, type WriterLimit, type WriterUsage } from "./catalog.ts";
import { type SecretHash, verifySecret } from "./secrets.ts";
import {
  cellSizeBytes,
  cookieBytes,
  decodeBase64,
  familyName,
  fieldTuples,
  mutationOps,
  rawMutations,
  tableDefinition,
  tableName,
  type TableSchema,
  VALUE_LIMITS,
  writerName,
} from "./validate.ts";
import { type TableChecksum, tableChecksums } from "./checksum.ts";
import { copyDatabaseToFile, sqlString } from "../util/sqlite_worker.ts";
import { WalCheckpointer } from "../util/wal_checkpointer.ts";
import { syncDir } from "../util/durable_file.ts";
import { writeFileAtomicInWorker } from "../util/file_worker.ts";
import { getLogger } from "@logtape/logtape";

const logger = getLogger(["ctl", "sor"]);

/**
 * How often the worker checkpoints the SoR. Pages rewritten within the interval are copied to
 * the database file once: 2 s against 200 ms gave 15% more 100-row writes/s (less I/O, which
 * also delays the Raft log's fsyncs), for a WAL of up to a few tens of MB under load.
 */
const CHECKPOINT_INTERVAL_MS = 2_000;

/** Default of the `commitEveryMs` option: how long applied batches may wait for their COMMIT. */
const COMMIT_EVERY_MS = 5;
/** Entries applied in one open transaction before it commits regardless of time. */
const COMMIT_ENTRIES_MAX = 10_000;

/** Limits used when a table or writer has none of its own (ctlstore's defaults). */
export const DEFAULT_LIMITS = {
  tableMaxSizeBytes: 100 * 1024 * 1024,
  tableWarnSizeBytes: 50 * 1024 * 1024,
  writerRowsPerMinute: 1000,
} as const;

/** How long an idempotency key is remembered, measured in leader time (`ts`). */
export const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000;
/**
 * …and, whatever the leader clocks say, at least for this many Raft entries: a leader whose clock
 * jumps a day ahead must not make the cluster forget the keys of writes being retried right now.
 */
export const IDEMPOTENCY_RETENTION_ENTRIES = 100_000;

/** Most ledger entries one read returns. */
export const LEDGER_READ_MAX = 1000;

const WINDOW_MS = 60_000;
const APPLIED_INDEX = "applied_index";
/** The latest leader time applied: time at apply never goes backwards. */
const LEADER_TS = "leader_ts";
const SQLITE_HEADER = "SQLite format 3\u0000";

/** A committed Raft entry as the Raft node hands it over. */
export interface CommittedEntry {
  index: number;
  /** "internal": a no-op or membership entry: only its index is recorded. */
  kind: "app" | "internal";
  data: Uint8Array;
  /** Its Raft term; tells a speculated entry from another at the same index (`speculate`). */
  term?: number;
  /** On the leader, the `PreparedCommand` it proposed these bytes with: saves decoding them. */
  local?: unknown;
}

/** SAVEPOINT / RELEASE / ROLLBACK TO of one named savepoint, prepared once per open. */
interface Savepoint {
  begin: StatementSync;
  release: StatementSync;
  rollback: StatementSync;
}

/** The leader's own next entry, applied before it committed (`SorStateMachine.speculate`). */
interface Speculation {
  index: number;
  term: number;
  /** The proposal's `PreparedCommand`: the committed entry must carry the same one. */
  local: PreparedCommand;
  /** The batch savepoint, or null when the speculation opened the transaction. */
  sp: Savepoint | null;
  result: ApplyResult;
  /** The ledger's last seq before it: what reads of the ledger go up to meanwhile. */
  lastSeq: number;
  /** The commit timer fired meanwhile: COMMIT as soon as the speculation is settled. */
  commitDue: boolean;
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`SorStateMachine invariant broken: ${message}`);
}

/** The fingerprint that ties an idempotency key to one command (ts and key excluded). */
function fingerprint(cmd: SorCommand): string {
  const { ts: _ts, idempotencyKey: _key, ...body } = cmd;
  return createHash("sha256").update(JSON.stringify(body)).digest("hex");
}

/**
 * The stored size of one column as the table size limit counts it (`cellSizeBytes` of the value
 * that was written): 8 for numbers, UTF-8 bytes of text, bytes of a blob, 0 for NULL.
 */
function storedColumnSizeSql(col: string): string {
  return `CASE typeof(${col}) WHEN 'integer' THEN 8 WHEN 'real' THEN 8 ` +
    `WHEN 'text' THEN length(CAST(${col} AS BLOB)) WHEN 'blob' THEN length(${col}) ELSE 0 END`;
}

/**
 * SQL summing the stored size of the rows with `rows` keys, each key bound as parameters
 * (`cellToSql` of each key column, as the rows were written). Summed in SQLite, since reading
 * rows into JS cost more than the lookups; many keys per statement, since each call into SQLite
 * has a fixed cost.
 */
function storedSizeSql(layout: TableLayout, rows: number): string {
  const size = layout.columns.map(({ name }) => `(${storedColumnSizeSql(quoteIdent(name))})`);
  const keyCols = layout.keys.map(quoteIdent);
  const marks = (n: number) => new Array(n).fill("?").join(", ");
  const probe = rows === 1
    ? keyCols.map((k) => `${k} = ?`).join(" AND ")
    : keyCols.length === 1
    ? `${keyCols[0]} IN (${marks(rows)})`
    : `(${keyCols.join(", ")}) IN (VALUES ${
      new Array(rows).fill(`(${marks(keyCols.length)})`).join(", ")
    })`;
  return `SELECT COALESCE(SUM(${size.join(" + ")}), 0) AS size FROM ${
    quoteIdent(layout.name)
  } WHERE ${probe}`;
}

function positiveInt(value: unknown, what: string, action: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new CtlError(
      "bad_request",
      `${action}: ${what} ${JSON.stringify(value)} must be a positive integer`,
    );
  }
  return value;
}

/** The SoR: schema catalog, writers, limits, ledger and data tables in one SQLite file. */
export class SorStateMachine {
  readonly #path: string;
  #db!: DatabaseSync;
  /** The per-command savepoint. */
  #savepoint!: Savepoint;
  /** The savepoint of a whole batch inside the shared transaction. */
  #batchSavepoint!: Savepoint;
  /** The leader's own next entry, applied ahead of its commit; null when none is. */
  #speculation: Speculation | null = null;
  /** Speculations kept as their entry's apply, and undone, since this SoR was opened. */
  readonly speculations = { kept: 0, undone: 0 };
  #catalog!: SorCatalog;
  #applier!: LedgerSqlApplier;
  #checkpointer!: WalCheckpointer;
  #closed = false;
  /**
   * Stored-size statements per physical table, by keys per statement; cleared whenever the
   * schema may have changed.
   */
  readonly #rowLookups = new Map<string, Map<number, StatementSync>>();

  readonly #checkpointIntervalMs: number;
  readonly #commitEveryMs: number;
  /** Entries applied in the open transaction; 0 when none is open. */
  #uncommitted = 0;
  #commitTimer: ReturnType<typeof setTimeout> | undefined;
  /** A COMMIT held up by a speculation is due (`#oweCommit`). */
  #commitOwed = false;

  /**
   * Opens (or creates) the SoR at `path`, a file path. `checkpointIntervalMs`: how often the
   * worker checkpoints (tests shorten it). `commitEveryMs`: how long applied batches may stay in
   * an open transaction (0: each batch commits at once).
   */
  constructor(
    path: string,
    options: { checkpointIntervalMs?: number; commitEveryMs?: number } = {},
  ) {
    this.#path = path;
    this.#checkpointIntervalMs = options.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS;
    this.#commitEveryMs = options.commitEveryMs ?? COMMIT_EVERY_MS;
    this.#open();
  }

  #open(): void {
    const db = new DatabaseSync(this.#path);
    db.exec("PRAGMA journal_mode = WAL");
    // NORMAL in WAL keeps every commit atomic; a commit lost to power failure is re-applied
    // from the Raft log, since the applied index is lost with it.
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA busy_timeout = 5000");
    // Checkpoints (two fsyncs) run on a worker, not inside a COMMIT on the Raft loop.
    db.exec("PRAGMA wal_autocheckpoint = 0");
    this.#checkpointer = new WalCheckpointer(this.#path, (message) => {
      logger.warn("SoR checkpoints fall back to SQLite's own: {message}", { message });
      if (this.#db === db && db.isOpen) db.exec("PRAGMA wal_autocheckpoint = 1000");
    }, this.#checkpointIntervalMs);
    this.#db = db;
    this.#savepoint = {
      begin: db.prepare("SAVEPOINT command"),
      release: db.prepare("RELEASE command"),
      rollback: db.prepare("ROLLBACK TO command"),
    };
    this.#batchSavepoint = {
      begin: db.prepare("SAVEPOINT batch"),
      release: db.prepare("RELEASE batch"),
      rollback: db.prepare("ROLLBACK TO batch"),
    };
    this.#catalog = new SorCatalog(db);
    this.#applier = new LedgerSqlApplier(db);
  }

  /** Index of the last applied Raft entry; 0 for a new SoR. */
  appliedIndex(): number {
    return this.#catalog.meta(APPLIED_INDEX);
  }

  /** Applies the committed entry at `index` (greater than `appliedIndex()`). */
  apply(index: number, data: Uint8Array): ApplyResult {
    this.#settle();
    this.#assertNext(index);
    let cmd: SorCommand;
    try {
      cmd = decodeCommand(data);
    } catch (e) {
      this.applyInternal(index);
      return { ok: false, error: (e as CtlError).toBody() };
    }
    return this.#batch(index, () => this.#command(() => this.#applyCommand(cmd, index), cmd));
  }

  /** Records an entry that carries no command (no-op, membership change). */
  applyInternal(index: number): void {
    this.#settle();
    this.#assertNext(index);
    this.#batch(index, () => this.#command(() => ({ ok: true, seq: 0 })));
  }

  /**
   * Applies committed entries in order; one result per entry (null for internal ones). The whole
   * batch is one SQLite transaction (each command in its own savepoint, so a failing command
   * still changes nothing), and the applied index is written once per transaction, before its
   * COMMIT. A speculation (`speculate`) on the first entry's index and term, of the same
   * proposal, is kept as that entry's apply; any other is undone first.
   */
  applyEntries(entries: readonly CommittedEntry[]): (ApplyResult | null)[] {
    if (entries.length === 0) return [];
    const spec = this.#speculation;
    if (spec !== null) {
      const first = entries[0];
      if (first.index === spec.index && first.term === spec.term && first.local === spec.local) {
        this.#speculation = null;
        this.#endBatch(spec.sp, spec.index, 1);
        if (spec.commitDue) this.#oweCommit();
        this.speculations.kept++;
        return entries.length === 1
          ? [spec.result]
          : [spec.result, ...this.#applyEntriesNow(entries.slice(1))];
      }
      this.#settle();
    }
    return this.#applyEntriesNow(entries);
  }

  #applyEntriesNow(entries: readonly CommittedEntry[]): (ApplyResult | null)[] {
    this.#assertNext(entries[0].index);
    for (let i = 1; i < entries.length; i++) {
      assert(entries[i].index === entries[i - 1].index + 1, "entries are not consecutive");
    }
    return this.#batch(entries[entries.length - 1].index, () =>
      entries.map((e) => {
        if (e.kind === "internal") return null;
        if (e.local instanceof PreparedCommand) {
          const prepared = e.local;
          return this.#command(
            () => this.#applyCommand(prepared.cmd, e.index, prepared.mutation),
            prepared.cmd,
          );
        }
        let cmd: SorCommand;
        try {
          cmd = decodeCommand(e.data);
        } catch (err) {
          return { ok: false, error: (err as CtlError).toBody() };
        }
        return this.#command(() => this.#applyCommand(cmd, e.index), cmd);
      }), entries.length);
  }

  /**
   * Applies the leader's own mutation at `index` (= `appliedIndex()` + 1, in Raft term `term`)
   * before it commits, while the leader waits for a quorum's fsyncs anyway: its apply then costs
   * almost nothing once it commits (40–50 µs of a lone write's path). `local` is the
   * `PreparedCommand` it was proposed with; anything else is not speculated on. Returns whether
   * the speculation is in place.
   *
   * Nothing outside this class can see it. Its changes sit in the open transaction, in a batch
   * that has not ended; every read of what a mutation changes (ledger, seqs, sizes, usage,
   * cookies, checksums), every other apply, a COMMIT and a copy of the file undo it first
   * (`#settle`), and so does the Raft node when it loses leadership (`abandonSpeculation`).
   * `applyEntries` keeps it only for the entry at the same index and term (Raft's Log Matching:
   * then it is the same entry) and the same proposal; the result is then exactly that of
   * applying the entry on the state it was speculated on, which is the state it commits on.
   */
  speculate(index: number, term: number, local: unknown): boolean {
    if (this.#closed || this.#speculation !== null) return false;
    if (!(local instanceof PreparedCommand) || local.cmd.type !== "mutate") return false;
    if (index !== this.appliedIndex() + 1) return false;
    if (this.#commitOwed) this.flush();
    const lastSeq = this.#catalog.lastSeq();
    const { sp, result } = this.#runInNewBatch(() =>
      this.#command(() => this.#applyCommand(local.cmd, index, local.mutation), local.cmd)
    );
    this.#speculation = { index, term, local, sp, result, lastSeq, commitDue: false };
    return true;
  }

  /**
   * A COMMIT that a speculation held up is owed once its entry is applied. Made at the verdict,
   * it ran before that write's reply; instead it runs at the next quiet moment: a timer that
   * fires after the reply, or the next speculation (the leader then waits for a quorum's fsyncs),
   * whichever comes first.
   */
  #oweCommit(): void {
    this.#commitOwed = true;
    clearTimeout(this.#commitTimer);
    this.#commitTimer = setTimeout(() => this.#flushOnTimer(), 0);
  }

  /** Undoes a speculation, if one is in place (the Raft node lost leadership). */
  abandonSpeculation(): void {
    this.#settle();
  }

  /** Undoes the speculation, if any, and makes a COMMIT it held up. */
  #settle(): void {
    const spec = this.#speculation;
    if (spec === null) return;
    this.#speculation = null;
    this.#undoBatch(spec.sp);
    this.speculations.undone++;
    if (spec.commitDue) this.flush();
  }

  #assertNext(index: number): void {
    assert(!this.#closed, "apply after close");
    assert(Number.isSafeInteger(index) && index > 0, `bad index ${index}`);
    const applied = this.appliedIndex();
    assert(index > applied, `index ${index} at or below applied index ${applied}`);
  }

  /**
   * Runs `body` as one batch that ends with the applied index set to `lastIndex`, in the shared
   * transaction (opened here when none is), and commits it when due.
   */
  #batch<T>(lastIndex: number, body: () => T, entries = 1): T {
    const { sp, result } = this.#runInNewBatch(body);
    this.#endBatch(sp, lastIndex, entries);
    return result;
  }

  /** Begins a batch and runs `body` in it; a failure undoes the batch and is thrown on. */
  #runInNewBatch<T>(body: () => T): { sp: Savepoint | null; result: T } {
    const sp = this.#beginBatch();
    try {
      return { sp, result: body() };
    } catch (e) {
      this.#undoBatch(sp);
      throw e;
    }
  }

  /**
   * Starts a batch in the shared transaction (opened here when none is); returns its savepoint,
   * or null when the batch opened the transaction.
   */
  #beginBatch(): Savepoint | null {
    assert(this.#speculation === null, "a batch begins while a speculation is in place");
    // A batch that opens the transaction is undone by rolling the transaction back; only one
    // that joins earlier batches needs a savepoint of its own (two statements fewer otherwise:
    // 10–15 µs of a lone write's apply on the leader).
    const sp = this.#uncommitted === 0 ? null : this.#batchSavepoint;
    if (sp === null) this.#db.exec("BEGIN IMMEDIATE");
    else sp.begin.run();
    // The hot rows (applied index, sizes, usage) are held back until the COMMIT (`flush`).
    this.#catalog.deferWrites(true);
    this.#catalog.beginBatch();
    return sp;
  }

  /**
   * Ends a batch whose entries applied, with the applied index at `lastIndex`, and commits the
   * transaction when due.
   */
  #endBatch(sp: Savepoint | null, lastIndex: number, entries: number): void {
    try {
      this.#catalog.setMeta(APPLIED_INDEX, lastIndex);
      sp?.release.run();
      this.#catalog.commitBatch();
      this.#uncommitted += entries;
    } catch (e) {
      this.#undoBatch(sp);
      throw e;
    }
    if (this.#commitEveryMs <= 0 || this.#uncommitted >= COMMIT_ENTRIES_MAX) {
      this.flush();
    } else {
      this.#commitTimer ??= setTimeout(() => this.#flushOnTimer(), this.#commitEveryMs);
    }
  }

  /** Undoes the running batch: only it, since earlier ones in the transaction were reported. */
  #undoBatch(sp: Savepoint | null): void {
    const db = this.#db;
    const cat = this.#catalog;
    if (db.isTransaction && sp !== null) {
      sp.rollback.run();
      sp.release.run();
      cat.rollbackBatch();
    } else {
      // This batch opened the transaction (it holds nothing else), or SQLite rolled the whole
      // transaction back (disk full, I/O error): the earlier batches went with it, and the Raft
      // loop stops on the error that led here, to re-apply them after a restart.
      if (db.isTransaction) db.exec("ROLLBACK");
      this.#uncommitted = 0;
      cat.discardWrites();
      cat.deferWrites(false);
    }
    this.#forgetStatements();
  }

  /**
   * A COMMIT that fails here (disk full, I/O error) has no caller to fail: the process must stop,
   * as the Raft loop stops when an apply fails, and restart to re-apply from the log.
   */
  #flushOnTimer(): void {
    this.#commitTimer = undefined;
    const spec = this.#speculation;
    if (spec !== null && !spec.commitDue) {
      // A COMMIT now would have to undo the speculation first; its entry usually commits within
      // a millisecond, and the COMMIT follows its verdict at once. The next tick settles it.
      spec.commitDue = true;
      this.#commitTimer = setTimeout(() => this.#flushOnTimer(), this.#commitEveryMs);
      return;
    }
    try {
      this.flush();
    } catch (e) {
      logger.fatal("Cannot commit applied batches to the SoR; stopping: {error}", {
        error: String((e as Error)?.stack ?? e),
      });
      throw e;
    }
  }

  /** Commits the applied batches now (before a copy of the file, a restore, or close). */
  flush(): void {
    this.#settle();
    clearTimeout(this.#commitTimer);
    this.#commitTimer = undefined;
    this.#commitOwed = false;
    if (this.#uncommitted === 0 || this.#closed) return;
    const db = this.#db;
    this.#catalog.deferWrites(false); // writes the held-back rows into the transaction
    this.#uncommitted = 0;
    db.exec("COMMIT");
    this.#checkpointer.afterCommit(() => db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get());
  }

  /**
   * Runs one command so that an expected failure (a CtlError) undoes exactly that command: in a
   * savepoint, except a mutation, which refuses only before its first SQLite write (`#mutate`)
   * and so has nothing in SQLite to undo — two statements fewer per write. The rows held back
   * in the catalog are undone either way; an unexpected error undoes the whole batch (#batch).
   */
  #command(body: () => ApplyResult, cmd?: SorCommand): ApplyResult {
    const sp = cmd?.type === "mutate" ? null : this.#savepoint;
    sp?.begin.run();
    this.#catalog.beginCommand();
    try {
      const result = body();
      sp?.release.run();
      this.#catalog.commitCommand();
      return result;
    } catch (e) {
      if (sp !== null) {
        sp.rollback.run();
        sp.release.run();
      }
      this.#catalog.rollbackCommand();
      // Cached layouts and statements may describe tables the rollback undid.
      this.#forgetStatements();
      if (!(e instanceof CtlError)) throw e;
      return { ok: false, error: e.toBody() };
    }
  }

  #forgetStatements(): void {
    this.#catalog.forgetCache();
    this.#applier.reset();
    this.#rowLookups.clear();
  }

  #applyCommand(stamped: SorCommand, index: number, prepared?: PreparedMutation): ApplyResult {
    // A new leader whose clock is behind its predecessor's must not move the ledger's time (or
    // the rate-limit windows) backwards: apply time is the latest leader time seen.
    const latestTs = this.#catalog.meta(LEADER_TS);
    const cmd = stamped.ts < latestTs ? { ...stamped, ts: latestTs } : stamped;
    if (cmd.ts > latestTs) this.#catalog.setMeta(LEADER_TS, cmd.ts);
    if (cmd.type !== "mutate") {
      this.#rowLookups.clear(); // DDL may change a table's layout
      // Other commands change rows wholesale (drop, clear, new writers): held-back writes first.
      this.#catalog.flushWrites();
    }
    const key = cmd.idempotencyKey;
    if (key !== undefined) {
      const fp = fingerprint(cmd);
      const seen = this.#catalog.idempotency(key);
      if (seen) {
        if (seen.fingerprint !== fp) {
          throw new CtlError(
            "idempotency_key_reused",
            `Cannot apply ${cmd.type}: Idempotency-Key "${key}" was used for a different request`,
          );
        }
        return JSON.parse(seen.result) as ApplyResult;
      }
      const result = this.#execute(cmd, prepared);
      this.#catalog.pruneIdempotency(
        cmd.ts - IDEMPOTENCY_RETENTION_MS,
        index - IDEMPOTENCY_RETENTION_ENTRIES,
      );
      this.#catalog.putIdempotency(
        key,
        { fingerprint: fp, result: JSON.stringify(result) },
        cmd.ts,
        index,
      );
      return result;
    }
    return this.#execute(cmd, prepared);
  }

  /** Appends one ledger entry for `ops` (none when empty) and returns the result. */
  #commit(ts: number, family: string | null, ops: LedgerOp[]): ApplyResult {
    if (ops.length === 0) return { ok: true, seq: this.#catalog.lastSeq() };
    const entry: LedgerEntry = { seq: this.#catalog.lastSeq() + 1, ts, family, ops };
    this.#applier.apply(ops, false);
    this.#catalog.appendLedger(entry);
    return { ok: true, seq: entry.seq };
  }

  #mustFamily(raw: unknown, action: string): string {
    const family = familyName(raw);
    if (!this.#catalog.hasFamily(family)) {
      throw new CtlError("family_not_found", `${action}: family "${family}" does not exist`);
    }
    return family;
  }

  #mustTable(rawFamily: unknown, rawTable: unknown, action: string): TableSchema {
    const family = this.#mustFamily(rawFamily, action);
    const table = tableName(rawTable);
    const schema = this.#catalog.table(family, table);
    if (!schema) {
      throw new CtlError(
        "table_not_found",
        `${action}: table "${table}" does not exist in family "${family}"`,
      );
    }
    return schema;
  }

  #mustWriter(raw: unknown, action: string): string {
    const writer = writerName(raw);
    if (!this.#catalog.writer(writer)) {
      throw new CtlError("writer_not_found", `${action}: writer "${writer}" does not exist`);
    }
    return writer;
  }

  #execute(cmd: SorCommand, prepared?: PreparedMutation): ApplyResult {
    const cat = this.#catalog;
    switch (cmd.type) {
      case "create_family": {
        const family = familyName(cmd.family);
        if (cat.hasFamily(family)) {
          throw new CtlError("family_exists", `Cannot create family "${family}": it exists`);
        }
        cat.addFamily(family);
        return this.#commit(cmd.ts, family, [{ op: "create_family", family }]);
      }
      case "create_tables": {
        if (!Array.isArray(cmd.tables) || cmd.tables.length === 0) {
          throw new CtlError("bad_request", "Cannot create tables: no tables given");
        }
        if (cmd.tables.length > VALUE_LIMITS.tablesPerBatchMax) {
          throw new CtlError(
            "bad_request",
            `Cannot create ${cmd.tables.length} tables: at most ${VALUE_LIMITS.tablesPerBatchMax} per request`,
          );
        }
        const ops: LedgerOp[] = [];
        const families = new Set<string>();
        for (const t of cmd.tables) {
          const schema = tableDefinition(t?.family, t?.name, t?.fields, t?.keyFields);
          const action = `Cannot create table "${schema.name}"`;
          this.#mustFamily(schema.family, action);
          if (cat.table(schema.family, schema.name)) {
            throw new CtlError(
              "table_exists",
              `${action}: it exists in family "${schema.family}"`,
            );
          }
          cat.putTable(schema);
          families.add(schema.family);
          ops.push({
            op: "create_table",
            family: schema.family,
            table: schema.name,
            fields: schema.fields,
            keyFields: schema.keyFields,
          });
        }
        const family = families.size === 1 ? [...families][0] : null;
        return this.#commit(cmd.ts, family, ops);
      }
      case "add_fields": {
        const schema = this.#mustTable(cmd.family, cmd.table, "Cannot add fields");
        const action = `Cannot add fields to table "${schema.name}"`;
        const fields = fieldTuples(cmd.fields, action);
        const existing = new Set(schema.fields.map(([n]) => n));
        for (const [name] of fields) {
          if (existing.has(name)) {
            throw new CtlError("field_exists", `${action}: field "${name}" exists`);
          }
        }
        if (schema.fields.length + fields.length > VALUE_LIMITS.fieldsPerTableMax) {
          throw new CtlError(
            "bad_request",
            `${action}: at most ${VALUE_LIMITS.fieldsPerTableMax} fields per table`,
          );
        }
        cat.putTable({ ...schema, fields: [...schema.fields, ...fields] });
        return this.#commit(cmd.ts, schema.family, [
          { op: "add_fields", family: schema.family, table: schema.name, fields },
        ]);
      }
      case "drop_table": {
        const schema = this.#mustTable(cmd.family, cmd.table, "Cannot drop table");
        cat.deleteTable(schema.family, schema.name);
        return this.#commit(cmd.ts, schema.family, [
          { op: "drop_table", family: schema.family, table: schema.name },
        ]);
      }
      case "clear_table": {
        const schema = this.#mustTable(cmd.family, cmd.table, "Cannot clear table");
        cat.setTableSizeBytes(schema.family, schema.name, 0);
        return this.#commit(cmd.ts, schema.family, [
          { op: "clear_table", family: schema.family, table: schema.name },
        ]);
      }
      case "clear_family": {
        const family = this.#mustFamily(cmd.family, "Cannot clear family");
        const ops: LedgerOp[] = cat.tables(family).map((t) => {
          cat.setTableSizeBytes(family, t.name, 0);
          return { op: "clear_table", family, table: t.name };
        });
        return this.#commit(cmd.ts, family, ops);
      }
      case "register_writer": {
        const writer = writerName(cmd.writer);
        const given: SecretHash = { saltHex: cmd.saltHex, secretHashHex: cmd.secretHashHex };
        if (
          !/^[0-9a-f]{2,128}$/.test(String(given.saltHex)) ||
          !/^[0-9a-f]{64}$/.test(String(given.secretHashHex))
        ) {
          throw new CtlError("bad_request", `Cannot register writer "${writer}": bad secret hash`);
        }
        const stored = cat.writer(writer);
        if (stored) {
          if (stored.saltHex === given.saltHex && stored.secretHashHex === given.secretHashHex) {
            return { ok: true, seq: cat.lastSeq() };
          }
          throw new CtlError(
            "writer_exists",
            `Cannot register writer "${writer}": it exists with a different secret`,
          );
        }
        cat.addWriter(writer, given);
        return { ok: true, seq: cat.lastSeq() };
      }
      case "set_cookie": {
        const writer = this.#mustWriter(cmd.writer, "Cannot set cookie");
        cat.setCookie(writer, cookieBytes(decodeBase64(String(cmd.cookieBase64), "cookie")));
        return { ok: true, seq: cat.lastSeq() };
      }
      case "mutate":
        return this.#mutate(cmd, prepared);
      case "set_table_limit": {
        const schema = this.#mustTable(cmd.family, cmd.table, "Cannot set table limit");
        const action = `Cannot set the limit of table "${schema.name}"`;
        const max = positiveInt(cmd.maxSizeBytes, "max-size", action);
        const warn = positiveInt(cmd.warnSizeBytes, "warn-size", action);
        if (warn > max) {
          throw new CtlError("bad_request", `${action}: warn-size ${warn} exceeds max-size ${max}`);
        }
        cat.setTableLimit({
          family: schema.family,
          table: schema.name,
          maxSizeBytes: max,
          warnSizeBytes: warn,
        });
        return { ok: true, seq: cat.lastSeq() };
      }
      case "delete_table_limit": {
        cat.deleteTableLimit(familyName(cmd.family), tableName(cmd.table));
        return { ok: true, seq: cat.lastSeq() };
      }
      case "set_writer_limit": {
        const writer = this.#mustWriter(cmd.writer, "Cannot set writer limit");
        const rows = positiveInt(cmd.rowsPerMinute, "rows per minute", "Cannot set writer limit");
        cat.setWriterLimit({ writer, rowsPerMinute: rows });
        return { ok: true, seq: cat.lastSeq() };
      }
      case "delete_writer_limit": {
        cat.deleteWriterLimit(writerName(cmd.writer));
        return { ok: true, seq: cat.lastSeq() };
      }
    }
  }

  #mutate(cmd: Extract<SorCommand, { type: "mutate" }>, prepared?: PreparedMutation): ApplyResult {
    const cat = this.#catalog;
    const writer = this.#mustWriter(cmd.writer, "Cannot apply mutations");
    const family = this.#mustFamily(cmd.family, "Cannot apply mutations");
    // The leader's own validation of these very mutations stands while no schema it used has
    // changed since; it passed the same checks, so nothing below could have failed on it.
    let validated: LedgerOp[] | undefined;
    if (prepared !== undefined) {
      validated = prepared.ops;
      for (const [table, schema] of prepared.schemas) {
        if (cat.table(family, table) !== schema) validated = undefined;
      }
    }
    const mutations = validated === undefined ? rawMutations(cmd.mutations, family) : undefined;
    const count = validated?.length ?? mutations!.length;

    if (cmd.checkCookieBase64 !== undefined) {
      const expected = decodeBase64(String(cmd.checkCookieBase64), "check_cookie");
      const stored = cat.cookie(writer);
      if (Buffer.compare(Buffer.from(expected), Buffer.from(stored)) !== 0) {
        throw new CtlError(
          "cookie_conflict",
          `Cannot apply mutations for writer "${writer}": check_cookie does not match the stored cookie`,
        );
      }
    }

    const usage = this.#usageAt(writer, cmd.ts);
    const allowed = this.effectiveWriterLimit(writer);
    if (usage.rows + count > allowed) {
      throw new CtlError(
        "rate_limited",
        `Cannot apply ${count} mutations for writer "${writer}": ${usage.rows} of ${allowed} rows used in this minute`,
      );
    }

    const ops = validated ?? mutationOps(family, mutations!, (t) => cat.table(family, t));
    // Size change per table: the new rows' sizes minus the stored sizes of the rows they
    // replace or delete, summed in SQLite 64 keys at a time (keys are distinct within a batch).
    const deltas = new Map<string, number>();
    const touched = new Map<string, { schema: TableSchema; keys: Record<string, Cell>[] }>();
    for (const op of ops) {
      if (op.op !== "upsert" && op.op !== "delete") continue;
      let t = touched.get(op.table);
      if (!t) {
        t = { schema: cat.table(family, op.table)!, keys: [] };
        touched.set(op.table, t);
      }
      let delta = 0;
      if (op.op === "upsert") {
        for (const [name, type] of t.schema.fields) delta += cellSizeBytes(type, op.values[name]);
        t.keys.push(op.values);
      } else {
        t.keys.push(op.key);
      }
      deltas.set(op.table, (deltas.get(op.table) ?? 0) + delta);
    }
    for (const [table, { schema, keys }] of touched) {
      deltas.set(table, deltas.get(table)! - this.#storedRowsSizeBytes(schema, keys));
    }
    for (const [table, delta] of deltas) {
      const size = Math.max(0, cat.tableSizeBytes(family, table) + delta);
      const limit = this.effectiveTableLimit(family, table);
      if (delta > 0 && size > limit.maxSizeBytes) {
        throw new CtlError(
          "table_size_limit_exceeded",
          `Cannot apply mutations to table "${table}" in family "${family}": its size would be ${size} bytes, over its limit of ${limit.maxSizeBytes}`,
        );
      }
      cat.setTableSizeBytes(family, table, size);
    }

    const cookie = cmd.cookieBase64 === undefined
      ? undefined
      : cookieBytes(decodeBase64(String(cmd.cookieBase64), "cookie"));

    // Every refusal is above: a mutation runs without a savepoint of its own (#command), so from
    // its first SQLite write on, a request error would leave it half-applied. None is expected;
    // one here is a bug, and fails the whole batch instead.
    try {
      if (cookie !== undefined) cat.setCookie(writer, cookie);
      cat.setWriterUsage(writer, {
        windowStartMs: usage.windowStartMs,
        rows: usage.rows + ops.length,
      });
      return this.#commit(cmd.ts, family, ops);
    } catch (e) {
      if (!(e instanceof CtlError)) throw e;
      throw new Error(
        `SoR invariant broken: mutation refused after it began writing: ${e.message}`,
      );
    }
  }

  /** The writer's usage in the fixed one-minute window containing `ts`. */
  #usageAt(writer: string, ts: number): WriterUsage {
    const windowStartMs = ts - (ts % WINDOW_MS);
    const usage = this.#catalog.writerUsage(writer);
    return usage.windowStartMs === windowStartMs ? usage : { windowStartMs, rows: 0 };
  }

  /** The stored size of the rows with these keys (absent rows count 0). */
  #storedRowsSizeBytes(schema: TableSchema, keys: readonly Record<string, Cell>[]): number {
    const layout = this.#applier.layout(schema.family, schema.name);
    assert(layout, `table ${schema.family}.${schema.name} in catalog but not in SQLite`);
    const physical = physicalTableName(schema.family, schema.name);
    let lookups = this.#rowLookups.get(physical);
    if (!lookups) {
      lookups = new Map();
      this.#rowLookups.set(physical, lookups);
    }
    const keyTypes = layout.keys.map((k) => [k, layout.types.get(k)!] as const);
    let total = 0;
    for (const [at, rows] of rowChunks(keys.length, keyTypes.length)) {
      let stmt = lookups.get(rows);
      if (!stmt) {
        stmt = this.#db.prepare(storedSizeSql(layout, rows));
        lookups.set(rows, stmt);
      }
      const params: SQLInputValue[] = new Array(rows * keyTypes.length);
      let p = 0;
      for (let r = at; r < at + rows; r++) {
        for (const [k, type] of keyTypes) params[p++] = cellToSql(type, keys[r][k]);
      }
      total += Number((stmt.get(...params) as { size: number | bigint }).size);
    }
    return total;
  }

  // --- reads ----------------------------------------------------------------------------------
  // A read never sees an entry that has not committed: those of state a mutation changes undo a
  // speculation first (`#settle`), except the ledger's, which stop short of it. Schemas, writers
  // and limits are outside a mutation's reach.

  /** Family names, sorted. */
  families(): string[] {
    return this.#catalog.families();
  }

  hasFamily(family: string): boolean {
    return this.#catalog.hasFamily(family);
  }

  /** A table's schema, or undefined. Names must be normalized (lower-case). */
  tableSchema(family: string, table: string): TableSchema | undefined {
    return this.#catalog.table(family, table);
  }

  /** Every table of a family, sorted by name. */
  familySchemas(family: string): TableSchema[] {
    return this.#catalog.tables(family);
  }

  hasWriter(writer: string): boolean {
    return this.#catalog.writer(writer) !== undefined;
  }

  /** Writer names, sorted. */
  writers(): string[] {
    return this.#catalog.writers();
  }

  /** Whether `secret` is the writer's secret (false for an unknown writer). Constant time. */
  verifyWriter(writer: string, secret: string): boolean {
    const stored = this.#catalog.writer(writer);
    return stored !== undefined && verifySecret(stored, secret);
  }

  /** The writer's cookie (empty when never set), or undefined for an unknown writer. */
  cookie(writer: string): Uint8Array | undefined {
    this.#settle();
    return this.#catalog.writer(writer) ? this.#catalog.cookie(writer) : undefined;
  }

  /** Table limits that were set explicitly. */
  tableLimits(): TableLimit[] {
    return this.#catalog.tableLimits();
  }

  tableLimit(family: string, table: string): TableLimit | undefined {
    return this.#catalog.tableLimit(family, table);
  }

  /** The limit in force for a table: its own, or the default. */
  effectiveTableLimit(family: string, table: string): TableLimit {
    return this.#catalog.tableLimit(family, table) ?? {
      family,
      table,
      maxSizeBytes: DEFAULT_LIMITS.tableMaxSizeBytes,
      warnSizeBytes: DEFAULT_LIMITS.tableWarnSizeBytes,
    };
  }

  /** The logical size of a table: the sum of its values' sizes, as the size limit counts it. */
  tableSizeBytes(family: string, table: string): number {
    this.#settle();
    return this.#catalog.tableSizeBytes(family, table);
  }

  /** Writer limits that were set explicitly. */
  writerLimits(): WriterLimit[] {
    return this.#catalog.writerLimits();
  }

  writerLimit(writer: string): WriterLimit | undefined {
    return this.#catalog.writerLimit(writer);
  }

  /** Rows per minute allowed to a writer: its own limit, or the default. */
  effectiveWriterLimit(writer: string): number {
    return this.#catalog.writerLimit(writer)?.rowsPerMinute ?? DEFAULT_LIMITS.writerRowsPerMinute;
  }

  /** A writer's usage in its last window (as of the last applied entry, not the clock). */
  writerUsage(writer: string): WriterUsage {
    this.#settle();
    return this.#catalog.writerUsage(writer);
  }

  /** Ledger entries with seq > `afterSeq`, in order, at most `limit` (≤ LEDGER_READ_MAX). */
  ledger(afterSeq: number, limit: number = LEDGER_READ_MAX): LedgerEntry[] {
    assert(Number.isSafeInteger(afterSeq) && afterSeq >= 0, `bad afterSeq ${afterSeq}`);
    const entries = this.#catalog.ledger(afterSeq, Math.max(0, Math.min(limit, LEDGER_READ_MAX)));
    // Streams read here after every apply: they skip a speculation's entry rather than undo it.
    const through = this.#speculation?.lastSeq;
    return through === undefined ? entries : entries.filter((e) => e.seq <= through);
  }

  /** The seq of the last ledger entry; 0 when empty. */
  lastSeq(): number {
    return this.#speculation?.lastSeq ?? this.#catalog.lastSeq();
  }

  /**
   * The oldest ledger seq still held; entries before it were pruned by the retention window.
   * 0 when the ledger is empty.
   */
  firstSeq(): number {
    this.#settle();
    return this.#catalog.firstLedgerSeq();
  }

  /**
   * Keeps the newest `keepEntries` ledger entries and deletes older ones; returns how many went.
   * Retention is each executive's serving policy, not replicated state: reflectors behind the
   * window bootstrap from a snapshot (`GET /v1/snapshot`) instead.
   */
  pruneLedger(keepEntries: number): number {
    assert(Number.isSafeInteger(keepEntries) && keepEntries >= 1, `bad keepEntries ${keepEntries}`);
    this.#settle(); // its DELETE must not join a speculation's transaction
    const through = this.lastSeq() - keepEntries;
    return through > 0 && this.firstSeq() <= through ? this.#catalog.pruneLedger(through) : 0;
  }

  /** A checksum of every data table, for comparing replicas (SoR against SoR or LDB). */
  checksums(): TableChecksum[] {
    this.#settle();
    return tableChecksums(this.#db);
  }

  // --- snapshots ------------------------------------------------------------------------------

  /** The whole state at `appliedIndex()`, as a SQLite file image (consistent: VACUUM INTO). */
  snapshot(): Uint8Array {
    this.flush(); // VACUUM cannot run inside a transaction
    const dir = Deno.makeTempDirSync({ prefix: "ctl-sor-snapshot-" });
    try {
      const file = `${dir}/snapshot.db`;
      this.#db.exec(`VACUUM INTO ${sqlString(file)}`);
      return Deno.readFileSync(file);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }

  /**
   * Writes the whole state to `path` (which must not exist) as a SQLite file and returns the
   * applied index it holds. Copied on a worker thread from a read transaction of its own: apply
   * goes on meanwhile, so the index is the one at the moment the copy began (at least
   * `appliedIndex()` at the call). The copy never enters this thread's memory.
   */
  async snapshotToFile(path: string): Promise<{ index: number }> {
    assert(!this.#closed, "snapshot after close");
    this.flush(); // the copy reads committed state: as fresh as it can be
    const index = await copyDatabaseToFile(this.#path, path, (copy) =>
      Number(
        copy.prepare(`SELECT value FROM _ctl_meta WHERE key = ?`).get(APPLIED_INDEX)?.value ?? 0,
      ));
    return { index };
  }

  /**
   * Replaces the whole state with a snapshot's. `index`, when given, must be the snapshot's
   * applied index (a mismatch means the caller paired the wrong snapshot and index).
   *
   * The image is written and fsynced on a worker, then swapped in by rename and the directory
   * fsynced: written here it held the event loop for as long as a large state takes to write,
   * and without the fsyncs a power loss could leave a renamed but incomplete SoR file behind a
   * Raft log that already starts after the snapshot.
   */
  async restore(data: Uint8Array, index?: number): Promise<void> {
    const header = new TextDecoder().decode(data.subarray(0, SQLITE_HEADER.length));
    if (header !== SQLITE_HEADER) {
      throw new CtlError(
        "bad_request",
        "Cannot restore the SoR: the snapshot is not a SQLite file",
      );
    }
    const staging = `${this.#path}.restore`;
    await writeFileAtomicInWorker(staging, [data]);
    this.flush();
    this.#checkpointer.close();
    this.#db.close();
    this.#rowLookups.clear();
    for (const suffix of ["-wal", "-shm"]) {
      try {
        Deno.removeSync(this.#path + suffix);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    Deno.renameSync(staging, this.#path);
    await syncDir(dirname(this.#path));
    this.#open();
    if (index !== undefined) {
      assert(
        this.appliedIndex() === index,
        `restored snapshot has applied index ${this.appliedIndex()}, expected ${index}`,
      );
    }
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#checkpointer.close();
    this.#db.close();
  }
}
