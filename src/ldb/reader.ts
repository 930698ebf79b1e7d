/**
 * The reader library: what applications call to read the LDB in-process, while the reflector
 * writes it from another process (SQLite WAL: readers never block the writer nor each other).
 *
 * Point reads run through a per-table prepared-statement cache, so `getRowByKey` costs a few
 * microseconds. SQLite re-prepares a cached statement by itself after a schema change; the cached
 * key layout is re-validated against `PRAGMA schema_version` at most every
 * `SCHEMA_CHECK_INTERVAL_MS` (checking on every read would double its cost), and at once when a
 * statement fails (a dropped table) or a key does not fit the cached layout. So a table dropped
 * and recreated with different key columns of the same count may be read with the old key
 * columns for up to that interval.
 *
 * Reads share SQLite read transactions ("snapshots"). Beginning and ending one takes the WAL's
 * read-mark lock and releases it: two `fcntl` system calls, which on a virtual machine with costly
 * system calls are most of a point read (1.3–1.7 µs each measured on one; a read in its own
 * transaction cost 9.1 µs at the median, against 2.2 µs in a shared one; on days the same VM's
 * system calls were cheap, the two were within a microsecond). So by default the reads
 * within `DEFAULT_SNAPSHOT_MS` (1 ms) of the first share one snapshot: they pay the lock once, see
 * one consistent state, and may miss commits made after it began. That staleness is bounded by
 * `snapshotMs` and small beside the ledger-to-LDB lag the LDB has anyway (milliseconds to tens of
 * them); snapshots only move forward, so reads stay monotonic. `openLdb(path, { snapshotMs: 0 })`
 * gives every read its own transaction (it sees every commit made before it began) for callers
 * that want that over speed; `refresh()` ends the shared snapshot at once, and `waitForSeq` ends
 * it before it looks, so read-your-writes holds either way. The snapshot ends by a timer when reads
 * stop, so an idle reader never keeps the reflector's checkpoint from truncating the WAL.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { fieldTypeOfColumn, quoteIdent } from "../ledger/sql.ts";
import type { FieldType } from "../ledger/types.ts";
import { physicalTableName } from "../ledger/types.ts";
import {
  LDB_LAST_UPDATE_TABLE,
  LDB_LEDGER_UPDATE_NAME,
  LDB_SEQ_TABLE,
  parseLdbTimestamp,
} from "./bookkeeping.ts";
import { LdbError } from "./errors.ts";
import { openReaderDatabase } from "./sqlite.ts";

/** A key part: integers as number, bigint or decimal string; bytestrings as bytes or UTF-8 text. */
export type KeyValue = string | number | bigint | Uint8Array;
/** A column value as read: integers beyond 2^53 come back as bigint, blobs as bytes. */
export type RowValue = string | number | bigint | Uint8Array | null;
/** One row: column name → value, in table column order. */
export type Row = Record<string, RowValue>;

/** Most rows one `getRowsByKeyPrefix` call returns. */
export const PREFIX_ROWS_MAX = 100_000;
/** Longest `waitForSeq` wait. */
export const WAIT_FOR_SEQ_MAX_MS = 60_000;
/** How often the cached key layouts are compared with the schema at most. */
export const SCHEMA_CHECK_INTERVAL_MS = 250;
const WAIT_POLL_MIN_MS = 1;
const WAIT_POLL_MAX_MS = 10;
/** Longest `snapshotMs`: a snapshot held longer would hold up the reflector's checkpoints. */
export const SNAPSHOT_MAX_MS = 100;
/** How long reads share one snapshot unless `snapshotMs` says otherwise. */
export const DEFAULT_SNAPSHOT_MS = 1;

export interface LdbReaderOptions {
  /**
   * Reads within this many milliseconds of the first share one snapshot (see above); default
   * `DEFAULT_SNAPSHOT_MS`. 0: every read is its own transaction and sees the latest commit. At
   * most `SNAPSHOT_MAX_MS`.
   */
  snapshotMs?: number;
}

export interface PrefixOptions {
  /** Most rows to return, 1..PREFIX_ROWS_MAX. */
  limit: number;
  /** Resume after this full key (the `next` of the previous page). */
  after?: readonly KeyValue[];
}

/** One page of a prefix scan, in key order. */
export interface RowPage {
  rows: Row[];
  /**
   * The key to pass as `after` for the next page: set whenever the page is full (the next page
   * may then be empty), undefined when it was not (the scan is complete).
   */
  next: KeyValue[] | undefined;
}

/** A column of an LDB table. `type` is undefined for a column ctl did not create. */
export interface ColumnLayout {
  name: string;
  type: FieldType | undefined;
}

/** The shape of one `family___table`, read from SQLite. */
export interface ReaderTableLayout {
  name: string;
  columns: ColumnLayout[];
  /** Key columns in key order. */
  keys: ColumnLayout[];
}

interface TableHandle {
  layout: ReaderTableLayout;
  byKey: StatementSync;
  byKeyBig: StatementSync | undefined;
  /** Prefix-scan statements by `${prefixLength}:${withAfter}`. */
  scans: Map<string, StatementSync>;
}

/** A reader over one LDB file. Not safe to share across workers; open one per worker. */
export class LdbReader {
  readonly path: string;
  readonly #db: DatabaseSync;
  /** Cached handles by family, then table (no string building on the hot path). */
  readonly #tables = new Map<string, Map<string, TableHandle>>();
  readonly #seqStmt: StatementSync;
  readonly #lastUpdateStmt: StatementSync;
  readonly #dataVersionStmt: StatementSync;
  readonly #schemaVersionStmt: StatementSync;
  #schemaVersion = -1;
  #schemaCheckedAt = -Infinity;
  #closed = false;
  readonly #snapshotMs: number;
  readonly #begin: StatementSync;
  readonly #end: StatementSync;
  /** performance.now() by which the open snapshot ends; -Infinity when none is open. */
  #snapshotUntil = -Infinity;
  #snapshotTimer: ReturnType<typeof setTimeout> | undefined;

  /** Use `openLdb`. */
  constructor(path: string, db: DatabaseSync, options: LdbReaderOptions = {}) {
    const snapshotMs = checkSnapshotMs(options.snapshotMs ?? DEFAULT_SNAPSHOT_MS);
    this.path = path;
    this.#db = db;
    this.#snapshotMs = snapshotMs;
    // Deferred: the read lock is taken by the first SELECT inside, released by COMMIT.
    this.#begin = db.prepare("BEGIN");
    this.#end = db.prepare("COMMIT");
    this.#seqStmt = db.prepare(`SELECT seq FROM ${LDB_SEQ_TABLE} WHERE id = 1`);
    this.#lastUpdateStmt = db.prepare(
      `SELECT timestamp FROM ${LDB_LAST_UPDATE_TABLE} WHERE name=?`,
    );
    this.#dataVersionStmt = db.prepare("PRAGMA data_version");
    this.#schemaVersionStmt = db.prepare("PRAGMA schema_version");
  }

  /**
   * The row with exactly this key, or undefined. Every key part is required. A string given for a
   * bytestring key part is looked up as its UTF-8 bytes.
   */
  getRowByKey(family: string, table: string, ...key: KeyValue[]): Row | undefined {
    let handle = this.#handle(family, table);
    if (key.length !== handle.layout.keys.length) handle = this.#freshHandle(family, table);
    const { keys, name } = handle.layout;
    if (key.length !== keys.length) {
      throw new LdbError(
        "bad_key",
        `Cannot read ${name}: the key has ${keys.length} part(s) ` +
          `(${keys.map((k) => k.name).join(", ")}), got ${key.length}`,
      );
    }
    const params: KeyValue[] = new Array(key.length);
    for (let i = 0; i < key.length; i++) params[i] = keyParam(name, keys[i], key[i]);
    try {
      return handle.byKey.get(...params) as Row | undefined;
    } catch (e) {
      return this.#getRowSlowly(family, table, params, e);
    }
  }

  /** The point read after the fast path failed: a big integer, or a changed schema. */
  #getRowSlowly(family: string, table: string, params: KeyValue[], e: unknown): Row | undefined {
    let handle = this.#handle(family, table);
    if (!isOutOfRange(e)) {
      // A dropped or altered table: forget what we cached and look again once.
      handle = this.#freshHandle(family, table, true);
      try {
        return handle.byKey.get(...params) as Row | undefined;
      } catch (again) {
        if (!isOutOfRange(again)) throw again;
      }
    }
    handle.byKeyBig ??= bigIntStatement(this.#db, handle.byKey.sourceSQL);
    const row = handle.byKeyBig.get(...params) as Row | undefined;
    return row && narrowBigInts(row);
  }

  /**
   * Rows whose key starts with `keyPrefix` (0..n leading key parts; none = whole table), ordered
   * by key, at most `limit`, resuming after the key `after` when given.
   */
  getRowsByKeyPrefix(
    family: string,
    table: string,
    keyPrefix: readonly KeyValue[],
    options: PrefixOptions,
  ): RowPage {
    const { limit, after } = options;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > PREFIX_ROWS_MAX) {
      throw new RangeError(`limit ${limit} is outside 1..${PREFIX_ROWS_MAX}`);
    }
    let handle = this.#handle(family, table);
    if (
      keyPrefix.length > handle.layout.keys.length ||
      (after && after.length !== handle.layout.keys.length)
    ) {
      handle = this.#freshHandle(family, table);
    }
    const { keys, name } = handle.layout;
    if (keyPrefix.length > keys.length) {
      throw new LdbError(
        "bad_key",
        `Cannot scan ${name}: the key has ${keys.length} part(s), the prefix has ${keyPrefix.length}`,
      );
    }
    if (after && after.length !== keys.length) {
      throw new LdbError(
        "bad_key",
        `Cannot scan ${name}: "after" must be a full key of ${keys.length} part(s)`,
      );
    }
    const params = keyPrefix.map((v, i) => keyParam(name, keys[i], v));
    if (after) params.push(...after.map((v, i) => keyParam(name, keys[i], v)));
    params.push(limit);
    const rows = this.#retryOnSchemaChange(family, table, (h) => {
      const stmt = this.#scanStatement(h, keyPrefix.length, after !== undefined);
      try {
        return stmt.all(...params) as Row[];
      } catch (e) {
        if (!isOutOfRange(e)) throw e;
        return bigIntStatement(this.#db, stmt.sourceSQL).all(...params).map((r) =>
          narrowBigInts(r as Row)
        );
      }
    });
    const last = rows.length === limit ? rows[rows.length - 1] : undefined;
    const next = last ? keys.map((k) => last[k.name] as KeyValue) : undefined;
    return { rows, next };
  }

  /** The last applied ledger seq (`_ldb_seq`), 0 when nothing was applied. */
  lastSeq(): number {
    this.#snapshot();
    const row = this.#seqStmt.get() as { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  /** The leader timestamp (unix ms) of the last applied entry, undefined before the first. */
  lastUpdateMs(): number | undefined {
    this.#snapshot();
    const row = this.#lastUpdateStmt.get(LDB_LEDGER_UPDATE_NAME) as
      | { timestamp: string }
      | undefined;
    return row ? parseLdbTimestamp(String(row.timestamp)) : undefined;
  }

  /**
   * Now minus the leader timestamp of the last applied entry, undefined before the first entry.
   * Meaningless when nothing is written; the heartbeat keeps it meaningful.
   */
  ledgerLatencyMs(nowMs: number = Date.now()): number | undefined {
    const ts = this.lastUpdateMs();
    return ts === undefined ? undefined : nowMs - ts;
  }

  /** True when the LDB answers a query. */
  ping(): boolean {
    try {
      this.lastSeq();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Waits until the LDB has applied `seq` (read-your-writes after a write acknowledged with that
   * seq); returns the applied seq. Polls `PRAGMA data_version`, which changes only when another
   * connection commits, every 1 ms growing to 10 ms, and reads `_ldb_seq` only after a change.
   * Throws `seq_timeout` after `timeoutMs`.
   */
  async waitForSeq(seq: number, timeoutMs: number): Promise<number> {
    if (!(timeoutMs >= 0 && timeoutMs <= WAIT_FOR_SEQ_MAX_MS)) {
      throw new RangeError(`timeoutMs ${timeoutMs} is outside 0..${WAIT_FOR_SEQ_MAX_MS}`);
    }
    const deadline = performance.now() + timeoutMs;
    this.#endSnapshot();
    let applied = this.lastSeq();
    let version = this.#dataVersion();
    let pollMs = WAIT_POLL_MIN_MS;
    while (applied < seq) {
      const leftMs = deadline - performance.now();
      if (leftMs <= 0) {
        throw new LdbError(
          "seq_timeout",
          `The LDB did not reach seq ${seq} within ${timeoutMs} ms (it is at seq ${applied})`,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(pollMs, leftMs)));
      pollMs = Math.min(pollMs * 2, WAIT_POLL_MAX_MS);
      this.#endSnapshot();
      const now = this.#dataVersion();
      if (now !== version) {
        version = now;
        applied = this.lastSeq();
      }
    }
    return applied;
  }

  /**
   * Ends the shared snapshot, so the next read sees every commit made before it: for a caller that
   * learned of a commit some other way than `waitForSeq` (which does this itself).
   */
  refresh(): void {
    this.#endSnapshot();
  }

  /** The layout of `family___table`; throws `table_not_found` when it does not exist. */
  tableLayout(family: string, table: string): ReaderTableLayout {
    return this.#handle(family, table).layout;
  }

  /** Closes the connection. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#endSnapshot();
    this.#closed = true;
    this.#tables.clear();
    this.#db.close();
  }

  /** `using reader = openLdb(path)` closes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }

  #dataVersion(): number {
    return (this.#dataVersionStmt.get() as { data_version: number }).data_version;
  }

  #handle(family: string, table: string): TableHandle {
    if (this.#closed) throw new Error(`LDB reader for "${this.path}" is closed`);
    this.#checkSchema(this.#snapshot());
    let byTable = this.#tables.get(family);
    if (!byTable) {
      byTable = new Map();
      this.#tables.set(family, byTable);
    }
    let handle = byTable.get(table);
    if (!handle) {
      try {
        handle = this.#loadTable(family, table);
      } catch (e) {
        // A table created after the snapshot began: look again in a fresh one.
        if (!(e instanceof LdbError) || !this.#endSnapshot()) throw e;
        this.#snapshot();
        handle = this.#loadTable(family, table);
      }
      byTable.set(table, handle);
    }
    return handle;
  }

  /**
   * Enters the read snapshot when reads share one: begins it, or ends one past its time and
   * begins the next. Returns performance.now().
   */
  #snapshot(): number {
    const now = performance.now();
    if (this.#snapshotMs === 0) return now;
    if (now < this.#snapshotUntil) return now;
    this.#endSnapshot();
    this.#begin.run();
    this.#snapshotUntil = now + this.#snapshotMs;
    // Reads that stop must not hold the snapshot: the checkpoint waits for it to end.
    const timer = setTimeout(() => {
      this.#snapshotTimer = undefined;
      this.#endSnapshot();
    }, this.#snapshotMs);
    Deno.unrefTimer(timer);
    this.#snapshotTimer = timer;
    return now;
  }

  /** Ends the open snapshot; true when one was open. */
  #endSnapshot(): boolean {
    if (this.#snapshotUntil === -Infinity) return false;
    this.#snapshotUntil = -Infinity;
    if (this.#snapshotTimer !== undefined) {
      clearTimeout(this.#snapshotTimer);
      this.#snapshotTimer = undefined;
    }
    this.#end.run();
    return true;
  }

  /** The handle after re-reading the schema: a key that does not fit may mean a changed table. */
  #freshHandle(family: string, table: string, forget = false): TableHandle {
    this.#endSnapshot();
    if (forget) this.#tables.clear();
    this.#schemaCheckedAt = -Infinity;
    return this.#handle(family, table);
  }

  #checkSchema(now: number): void {
    if (now - this.#schemaCheckedAt < SCHEMA_CHECK_INTERVAL_MS) return;
    this.#schemaCheckedAt = now;
    const version = (this.#schemaVersionStmt.get() as { schema_version: number }).schema_version;
    if (version !== this.#schemaVersion) {
      this.#schemaVersion = version;
      this.#tables.clear();
    }
  }

  #retryOnSchemaChange<T>(family: string, table: string, read: (h: TableHandle) => T): T {
    const handle = this.#handle(family, table);
    try {
      return read(handle);
    } catch (e) {
      if (isOutOfRange(e)) throw e;
      // A dropped or altered table: forget what we cached and look again once.
      return read(this.#freshHandle(family, table, true));
    }
  }

  #loadTable(family: string, table: string): TableHandle {
    const name = physicalTableName(family, table);
    const info = this.#db.prepare(
      "SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid",
    ).all(name) as { name: string; type: string; pk: number }[];
    if (info.length === 0) {
      throw new LdbError("table_not_found", `Table "${table}" of family "${family}" not found`);
    }
    const columns = info.map((c) => ({ name: c.name, type: fieldTypeOfColumn(c.type) }));
    const keys = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => ({
      name: c.name,
      type: fieldTypeOfColumn(c.type),
    }));
    if (keys.length === 0) {
      throw new LdbError("table_not_found", `Table "${name}" has no primary key: not a ctl table`);
    }
    const where = keys.map((k) => `${quoteIdent(k.name)} = ?`).join(" AND ");
    const byKey = this.#db.prepare(`SELECT * FROM ${quoteIdent(name)} WHERE ${where}`);
    return { layout: { name, columns, keys }, byKey, byKeyBig: undefined, scans: new Map() };
  }

  #scanStatement(handle: TableHandle, prefixLength: number, withAfter: boolean): StatementSync {
    const cacheKey = `${prefixLength}:${withAfter}`;
    let stmt = handle.scans.get(cacheKey);
    if (stmt) return stmt;
    const { name, keys } = handle.layout;
    const cols = keys.map((k) => quoteIdent(k.name));
    const conditions = cols.slice(0, prefixLength).map((c) => `${c} = ?`);
    if (withAfter) {
      conditions.push(`(${cols.join(", ")}) > (${cols.map(() => "?").join(", ")})`);
    }
    const where = conditions.length ? ` WHERE ${conditions.join(" AND ")}` : "";
    stmt = this.#db.prepare(
      `SELECT * FROM ${quoteIdent(name)}${where} ORDER BY ${cols.join(", ")} LIMIT ?`,
    );
    handle.scans.set(cacheKey, stmt);
    return stmt;
  }
}

/**
 * Opens an LDB for reading. Throws `ldb_unavailable` when the file is missing or holds no
 * `_ldb_seq` table (no reflector has initialised it yet).
 */
export function openLdb(path: string, options: LdbReaderOptions = {}): LdbReader {
  checkSnapshotMs(options.snapshotMs ?? DEFAULT_SNAPSHOT_MS);
  let db: DatabaseSync;
  try {
    db = openReaderDatabase(path);
  } catch (e) {
    throw new LdbError(
      "ldb_unavailable",
      `Cannot open LDB "${path}": ${e instanceof Error ? e.message : e}`,
      { cause: e },
    );
  }
  try {
    return new LdbReader(path, db, options);
  } catch (e) {
    db.close();
    throw new LdbError(
      "ldb_unavailable",
      `Cannot open LDB "${path}": not an LDB (${e instanceof Error ? e.message : e})`,
      { cause: e },
    );
  }
}

function keyParam(table: string, column: ColumnLayout, value: KeyValue): KeyValue {
  const bad = (expected: string) =>
    new LdbError(
      "bad_key",
      `Cannot read ${table}: key "${column.name}" must be ${expected}, got ${describe(value)}`,
    );
  switch (column.type) {
    case "integer":
      if (typeof value === "bigint") return value;
      if (typeof value === "number") {
        if (!Number.isSafeInteger(value)) throw bad("an integer");
        return value;
      }
      if (typeof value === "string" && /^-?\d{1,19}$/.test(value)) return BigInt(value);
      throw bad("an integer");
    case "bytestring":
    case "binary":
      if (value instanceof Uint8Array) return value;
      if (typeof value === "string") return new TextEncoder().encode(value);
      throw bad("bytes or a string");
    case "string":
    case "text":
      if (typeof value === "string") return value;
      throw bad("a string");
    default:
      return value;
  }
}

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  return `${typeof value} ${String(value).slice(0, 40)}`;
}

function isOutOfRange(e: unknown): boolean {
  return (e as { code?: string })?.code === "ERR_OUT_OF_RANGE";
}

function bigIntStatement(db: DatabaseSync, sql: string): StatementSync {
  const stmt = db.prepare(sql);
  stmt.setReadBigInts(true);
  return stmt;
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Turns the bigints a big-int statement read back into numbers where they fit. */
function narrowBigInts(row: Row): Row {
  for (const [k, v] of Object.entries(row)) {
    if (typeof v === "bigint" && v >= MIN_SAFE && v <= MAX_SAFE) row[k] = Number(v);
  }
  return row;
}

function checkSnapshotMs(ms: number): number {
  if (!(Number.isFinite(ms) && ms >= 0 && ms <= SNAPSHOT_MAX_MS)) {
    throw new RangeError(`snapshotMs ${ms} is outside 0..${SNAPSHOT_MAX_MS}`);
  }
  return ms;
}
