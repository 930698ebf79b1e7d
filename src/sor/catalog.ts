/**
 * The SoR's own tables beside the data tables: schema catalog, writers and cookies, limits,
 * usage counters, the ledger, idempotency keys and the applied Raft index.
 *
 * All are prefixed `_ctl_`; data tables are `family___table` with a family that starts with a
 * letter, so the two never collide. This module only reads and writes rows; the rules live in
 * `state_machine.ts`, and transactions belong to the caller.
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import type { FieldTuple, LedgerEntry, LedgerOp } from "../ledger/types.ts";
import type { SecretHash } from "./secrets.ts";
import type { TableSchema } from "./validate.ts";

/** The catalog's DDL, applied idempotently at open. */
export const CATALOG_DDL: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS _ctl_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS _ctl_families (name TEXT PRIMARY KEY)`,
  `CREATE TABLE IF NOT EXISTS _ctl_tables (
    family TEXT NOT NULL, name TEXT NOT NULL, fields TEXT NOT NULL, key_fields TEXT NOT NULL,
    size_bytes INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (family, name))`,
  `CREATE TABLE IF NOT EXISTS _ctl_writers (
    name TEXT PRIMARY KEY, salt_hex TEXT NOT NULL, secret_hash_hex TEXT NOT NULL, cookie BLOB,
    window_start_ms INTEGER NOT NULL DEFAULT 0, window_rows INTEGER NOT NULL DEFAULT 0)`,
  `CREATE TABLE IF NOT EXISTS _ctl_table_limits (
    family TEXT NOT NULL, name TEXT NOT NULL, max_size_bytes INTEGER NOT NULL,
    warn_size_bytes INTEGER NOT NULL, PRIMARY KEY (family, name))`,
  `CREATE TABLE IF NOT EXISTS _ctl_writer_limits (
    writer TEXT PRIMARY KEY, rows_per_minute INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS _ctl_ledger (
    seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, family TEXT, ops TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS _ctl_idempotency (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, result TEXT NOT NULL, ts INTEGER NOT NULL,
    idx INTEGER NOT NULL DEFAULT 0)`,
  `CREATE INDEX IF NOT EXISTS _ctl_idempotency_ts ON _ctl_idempotency (ts)`,
];

/** A table's size limit. */
export interface TableLimit {
  family: string;
  table: string;
  maxSizeBytes: number;
  warnSizeBytes: number;
}

/** A writer's rate limit. */
export interface WriterLimit {
  writer: string;
  rowsPerMinute: number;
}

/** A writer's usage in its current fixed one-minute window. */
export interface WriterUsage {
  windowStartMs: number;
  rows: number;
}

/** A stored idempotency record. */
export interface IdempotencyRecord {
  fingerprint: string;
  result: string;
}

type Row = Record<string, SQLInputValue>;

/** A held-back write: the row's new value (served by the cache) and the statement that stores it. */
type HeldWrite = { value: unknown; write: () => void };

/** Row access for the SoR's bookkeeping tables over one SQLite connection. */
export class SorCatalog {
  readonly #db: DatabaseSync;
  /** Prepared once per SQL text: the catalog's statements are a fixed, small set. */
  readonly #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
    for (const ddl of CATALOG_DDL) db.exec(ddl);
    // SoRs created before idempotency records carried their Raft index.
    const columns = db.prepare("PRAGMA table_info(_ctl_idempotency)").all() as { name: string }[];
    if (!columns.some((c) => c.name === "idx")) {
      db.exec("ALTER TABLE _ctl_idempotency ADD COLUMN idx INTEGER NOT NULL DEFAULT 0");
    }
  }

  #prepare(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  #get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.#prepare(sql).get(...params) as Row | undefined;
  }

  #all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#prepare(sql).all(...params) as Row[];
  }

  #run(sql: string, ...params: SQLInputValue[]): void {
    this.#prepare(sql).run(...params);
  }

  // --- read cache -----------------------------------------------------------------------------

  /**
   * Rows as last read or written, because every mutation reads the same few (schema, writer,
   * usage, limits, sizes, meta) and each read is a SQLite call. Writes go to SQLite and then
   * here; a method that changes many rows clears the cache, and so does the state machine when
   * a rollback may have undone a change (`forgetCache`), so nothing cached outlives the row.
   */
  readonly #cache = new Map<string, unknown>();

  #cached<T>(key: string, read: () => T): T {
    if (this.#cache.has(key)) return this.#cache.get(key) as T;
    const value = read();
    this.#cache.set(key, value);
    return value;
  }

  /** Drops every cached row (after a rollback or a restore); held-back writes stay. */
  forgetCache(): void {
    this.#cache.clear();
    for (const [key, { value }] of this.#pending) this.#cache.set(key, value);
  }

  /** Writes pending, then drops the cache: before a change of many rows. */
  #clearCache(): void {
    this.flushWrites();
    this.#cache.clear();
  }

  // --- held-back writes -----------------------------------------------------------------------

  /**
   * The rows every mutation rewrites (meta, table sizes, writer usage), held back while
   * `deferWrites` is on and written once by `flushWrites`, just before the transaction's COMMIT:
   * the batches of one transaction then write each row once, not once per batch (four statements
   * of a lone write's apply on the leader). Reads see them through the cache.
   */
  readonly #pending = new Map<string, HeldWrite>();
  #deferring = false;
  /** `#pending` as it was when the running command began, for `rollbackCommand`. */
  #atCommandStart: Map<string, HeldWrite> | null = null;
  /** `#pending` as it was when the running batch began, for `rollbackBatch`. */
  #atBatchStart: Map<string, HeldWrite> | null = null;

  #write(key: string, value: unknown, write: () => void): void {
    this.#cache.set(key, value);
    if (this.#deferring) this.#pending.set(key, { value, write });
    else write();
  }

  /** Holds back writes of the hot rows until `flushWrites` (on inside an apply batch). */
  deferWrites(on: boolean): void {
    if (!on) this.flushWrites();
    this.#deferring = on;
  }

  /** Writes every held-back row to SQLite. */
  flushWrites(): void {
    for (const { write } of this.#pending.values()) write();
    this.#pending.clear();
  }

  /** Forgets held-back writes (the transaction they belonged to was rolled back). */
  discardWrites(): void {
    this.#pending.clear();
    this.#atCommandStart = null;
    this.#atBatchStart = null;
    this.#cache.clear();
  }

  /** Marks the start of one apply batch, which `rollbackBatch` can undo. */
  beginBatch(): void {
    this.#atBatchStart = new Map(this.#pending);
  }

  /** The batch's changes stand (until the transaction's fate). */
  commitBatch(): void {
    this.#atBatchStart = null;
  }

  /**
   * Undoes the held-back writes of the running batch (its savepoint was rolled back), keeping
   * those of earlier batches in the same transaction, and drops the cache.
   */
  rollbackBatch(): void {
    this.#restorePending(this.#atBatchStart, "rollbackBatch without beginBatch");
    this.#atBatchStart = null;
    this.#atCommandStart = null;
  }

  /**
   * Puts `#pending` back as it was at a mark, and drops the cache (a rollback undid rows). A
   * missing mark is a rollback without its begin: `misuse` says which.
   */
  #restorePending(mark: ReadonlyMap<string, HeldWrite> | null, misuse: string): void {
    if (mark === null) throw new Error(`SorCatalog invariant broken: ${misuse}`);
    this.#pending.clear();
    for (const [key, p] of mark) this.#pending.set(key, p);
    this.forgetCache();
  }

  /** Marks the start of one command, which `rollbackCommand` can undo. */
  beginCommand(): void {
    this.#atCommandStart = new Map(this.#pending);
  }

  /** The command's changes stand. */
  commitCommand(): void {
    this.#atCommandStart = null;
  }

  /**
   * Undoes the held-back writes of the running command (its savepoint was rolled back, which
   * undid its SQLite writes, including any flushed since it began), and drops the cache.
   */
  rollbackCommand(): void {
    this.#restorePending(this.#atCommandStart, "rollbackCommand without beginCommand");
    this.#atCommandStart = null;
  }

  // --- meta -----------------------------------------------------------------------------------

  meta(key: string): number {
    return this.#cached(
      `meta\u0000${key}`,
      () => Number(this.#get(`SELECT value FROM _ctl_meta WHERE key = ?`, key)?.value ?? 0),
    );
  }

  setMeta(key: string, value: number): void {
    this.#write(`meta\u0000${key}`, value, () =>
      this.#run(
        `INSERT INTO _ctl_meta (key, value) VALUES (?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        key,
        value,
      ));
  }

  // --- schema ---------------------------------------------------------------------------------

  hasFamily(family: string): boolean {
    return this.#cached(
      `family\u0000${family}`,
      () => this.#get(`SELECT 1 AS x FROM _ctl_families WHERE name = ?`, family) !== undefined,
    );
  }

  families(): string[] {
    return this.#all(`SELECT name FROM _ctl_families ORDER BY name`).map((r) => String(r.name));
  }

  addFamily(family: string): void {
    this.#clearCache();
    this.#run(`INSERT INTO _ctl_families (name) VALUES (?)`, family);
  }

  #schemaOf(row: Row): TableSchema {
    return {
      family: String(row.family),
      name: String(row.name),
      fields: JSON.parse(String(row.fields)) as FieldTuple[],
      keyFields: JSON.parse(String(row.key_fields)) as string[],
    };
  }

  table(family: string, table: string): TableSchema | undefined {
    return this.#cached(`table\u0000${family}\u0000${table}`, () => {
      const row = this.#get(
        `SELECT family, name, fields, key_fields FROM _ctl_tables WHERE family = ? AND name = ?`,
        family,
        table,
      );
      return row ? Object.freeze(this.#schemaOf(row)) : undefined;
    });
  }

  tables(family: string): TableSchema[] {
    return this.#all(
      `SELECT family, name, fields, key_fields FROM _ctl_tables WHERE family = ? ORDER BY name`,
      family,
    ).map((r) => this.#schemaOf(r));
  }

  putTable(schema: TableSchema): void {
    this.#clearCache();
    this.#run(
      `INSERT INTO _ctl_tables (family, name, fields, key_fields) VALUES (?, ?, ?, ?)
       ON CONFLICT (family, name) DO UPDATE SET fields = excluded.fields,
         key_fields = excluded.key_fields`,
      schema.family,
      schema.name,
      JSON.stringify(schema.fields),
      JSON.stringify(schema.keyFields),
    );
  }

  deleteTable(family: string, table: string): void {
    this.#clearCache();
    this.#run(`DELETE FROM _ctl_tables WHERE family = ? AND name = ?`, family, table);
    this.#run(`DELETE FROM _ctl_table_limits WHERE family = ? AND name = ?`, family, table);
  }

  tableSizeBytes(family: string, table: string): number {
    return this.#cached(`size\u0000${family}\u0000${table}`, () =>
      Number(
        this.#get(
          `SELECT size_bytes FROM _ctl_tables WHERE family = ? AND name = ?`,
          family,
          table,
        )?.size_bytes ?? 0,
      ));
  }

  setTableSizeBytes(family: string, table: string, sizeBytes: number): void {
    this.#write(`size\u0000${family}\u0000${table}`, sizeBytes, () =>
      this.#run(
        `UPDATE _ctl_tables SET size_bytes = ? WHERE family = ? AND name = ?`,
        sizeBytes,
        family,
        table,
      ));
  }

  // --- writers --------------------------------------------------------------------------------

  writer(name: string): SecretHash | undefined {
    return this.#cached(`writer\u0000${name}`, () => {
      const row = this.#get(
        `SELECT salt_hex, secret_hash_hex FROM _ctl_writers WHERE name = ?`,
        name,
      );
      return row
        ? Object.freeze({
          saltHex: String(row.salt_hex),
          secretHashHex: String(row.secret_hash_hex),
        })
        : undefined;
    });
  }

  writers(): string[] {
    return this.#all(`SELECT name FROM _ctl_writers ORDER BY name`).map((r) => String(r.name));
  }

  addWriter(name: string, secret: SecretHash): void {
    this.#clearCache();
    this.#run(
      `INSERT INTO _ctl_writers (name, salt_hex, secret_hash_hex) VALUES (?, ?, ?)`,
      name,
      secret.saltHex,
      secret.secretHashHex,
    );
  }

  /** The writer's cookie: empty when never set. */
  /** The writer's cookie: empty when never set. A copy: callers may keep or change it. */
  cookie(writer: string): Uint8Array {
    return this.#cached(`cookie\u0000${writer}`, () => {
      const value = this.#get(`SELECT cookie FROM _ctl_writers WHERE name = ?`, writer)?.cookie;
      return value instanceof Uint8Array ? value : new Uint8Array();
    }).slice();
  }

  setCookie(writer: string, cookie: Uint8Array): void {
    this.#run(`UPDATE _ctl_writers SET cookie = ? WHERE name = ?`, cookie, writer);
    this.#cache.set(`cookie\u0000${writer}`, cookie.slice());
  }

  writerUsage(writer: string): WriterUsage {
    return this.#cached(`usage\u0000${writer}`, () => {
      const row = this.#get(
        `SELECT window_start_ms, window_rows FROM _ctl_writers WHERE name = ?`,
        writer,
      );
      return Object.freeze({
        windowStartMs: Number(row?.window_start_ms ?? 0),
        rows: Number(row?.window_rows ?? 0),
      });
    });
  }

  setWriterUsage(writer: string, usage: WriterUsage): void {
    this.#write(`usage\u0000${writer}`, Object.freeze({ ...usage }), () =>
      this.#run(
        `UPDATE _ctl_writers SET window_start_ms = ?, window_rows = ? WHERE name = ?`,
        usage.windowStartMs,
        usage.rows,
        writer,
      ));
  }

  // --- limits ---------------------------------------------------------------------------------

  tableLimit(family: string, table: string): TableLimit | undefined {
    return this.#cached(`tlimit\u0000${family}\u0000${table}`, () => {
      const r = this.#get(
        `SELECT max_size_bytes, warn_size_bytes FROM _ctl_table_limits
         WHERE family = ? AND name = ?`,
        family,
        table,
      );
      return r
        ? Object.freeze({
          family,
          table,
          maxSizeBytes: Number(r.max_size_bytes),
          warnSizeBytes: Number(r.warn_size_bytes),
        })
        : undefined;
    });
  }

  tableLimits(): TableLimit[] {
    return this.#all(
      `SELECT family, name, max_size_bytes, warn_size_bytes FROM _ctl_table_limits
       ORDER BY family, name`,
    ).map((r) => ({
      family: String(r.family),
      table: String(r.name),
      maxSizeBytes: Number(r.max_size_bytes),
      warnSizeBytes: Number(r.warn_size_bytes),
    }));
  }

  setTableLimit(limit: TableLimit): void {
    this.#run(
      `INSERT INTO _ctl_table_limits (family, name, max_size_bytes, warn_size_bytes)
       VALUES (?, ?, ?, ?) ON CONFLICT (family, name) DO UPDATE SET
       max_size_bytes = excluded.max_size_bytes, warn_size_bytes = excluded.warn_size_bytes`,
      limit.family,
      limit.table,
      limit.maxSizeBytes,
      limit.warnSizeBytes,
    );
    this.#cache.delete(`tlimit\u0000${limit.family}\u0000${limit.table}`);
  }

  deleteTableLimit(family: string, table: string): void {
    this.#run(`DELETE FROM _ctl_table_limits WHERE family = ? AND name = ?`, family, table);
    this.#cache.delete(`tlimit\u0000${family}\u0000${table}`);
  }

  writerLimits(): WriterLimit[] {
    return this.#all(`SELECT writer, rows_per_minute FROM _ctl_writer_limits ORDER BY writer`).map(
      (r) => ({ writer: String(r.writer), rowsPerMinute: Number(r.rows_per_minute) }),
    );
  }

  writerLimit(writer: string): WriterLimit | undefined {
    return this.#cached(`wlimit\u0000${writer}`, () => {
      const row = this.#get(
        `SELECT writer, rows_per_minute FROM _ctl_writer_limits WHERE writer = ?`,
        writer,
      );
      return row
        ? Object.freeze({ writer: String(row.writer), rowsPerMinute: Number(row.rows_per_minute) })
        : undefined;
    });
  }

  setWriterLimit(limit: WriterLimit): void {
    this.#run(
      `INSERT INTO _ctl_writer_limits (writer, rows_per_minute) VALUES (?, ?)
       ON CONFLICT (writer) DO UPDATE SET rows_per_minute = excluded.rows_per_minute`,
      limit.writer,
      limit.rowsPerMinute,
    );
    this.#cache.delete(`wlimit\u0000${limit.writer}`);
  }

  deleteWriterLimit(writer: string): void {
    this.#run(`DELETE FROM _ctl_writer_limits WHERE writer = ?`, writer);
    this.#cache.delete(`wlimit\u0000${writer}`);
  }

  // --- ledger ---------------------------------------------------------------------------------

  lastSeq(): number {
    return this.#cached(
      "lastSeq",
      () => Number(this.#get(`SELECT COALESCE(MAX(seq), 0) AS seq FROM _ctl_ledger`)?.seq ?? 0),
    );
  }

  firstLedgerSeq(): number {
    return Number(this.#get(`SELECT COALESCE(MIN(seq), 0) AS seq FROM _ctl_ledger`)?.seq ?? 0);
  }

  /** Deletes ledger entries with seq ≤ `throughSeq`; returns how many. */
  pruneLedger(throughSeq: number): number {
    this.#cache.delete("lastSeq");
    return Number(this.#prepare(`DELETE FROM _ctl_ledger WHERE seq <= ?`).run(throughSeq).changes);
  }

  appendLedger(entry: LedgerEntry): void {
    this.#run(
      `INSERT INTO _ctl_ledger (seq, ts, family, ops) VALUES (?, ?, ?, ?)`,
      entry.seq,
      entry.ts,
      entry.family,
      JSON.stringify(entry.ops),
    );
    this.#cache.set("lastSeq", entry.seq);
  }

  ledger(afterSeq: number, limit: number): LedgerEntry[] {
    return this.#all(
      `SELECT seq, ts, family, ops FROM _ctl_ledger WHERE seq > ? ORDER BY seq LIMIT ?`,
      afterSeq,
      limit,
    ).map((r) => ({
      seq: Number(r.seq),
      ts: Number(r.ts),
      family: r.family === null ? null : String(r.family),
      ops: JSON.parse(String(r.ops)) as LedgerOp[],
    }));
  }

  // --- idempotency ----------------------------------------------------------------------------

  idempotency(key: string): IdempotencyRecord | undefined {
    const row = this.#get(`SELECT fingerprint, result FROM _ctl_idempotency WHERE key = ?`, key);
    return row ? { fingerprint: String(row.fingerprint), result: String(row.result) } : undefined;
  }

  putIdempotency(key: string, record: IdempotencyRecord, ts: number, index: number): void {
    this.#run(
      `INSERT INTO _ctl_idempotency (key, fingerprint, result, ts, idx) VALUES (?, ?, ?, ?, ?)`,
      key,
      record.fingerprint,
      record.result,
      ts,
      index,
    );
  }

  /** Forgets records older than `beforeTs` in leader time AND below Raft index `beforeIndex`. */
  pruneIdempotency(beforeTs: number, beforeIndex: number): void {
    this.#run(`DELETE FROM _ctl_idempotency WHERE ts < ? AND idx < ?`, beforeTs, beforeIndex);
  }
}
