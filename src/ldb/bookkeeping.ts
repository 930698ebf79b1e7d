/**
 * The LDB's bookkeeping tables, in ctlstore's layout so ctlstore readers work on our LDB:
 * `_ldb_seq` (single row id = 1: the last applied ledger seq) and `_ldb_last_update` (row
 * `name = 'ledger'`: the leader timestamp of the last applied entry).
 */
import type { DatabaseSync } from "node:sqlite";

export const LDB_SEQ_TABLE = "_ldb_seq";
export const LDB_LAST_UPDATE_TABLE = "_ldb_last_update";
/** The `_ldb_last_update.name` of the ledger row. */
export const LDB_LEDGER_UPDATE_NAME = "ledger";
/** The `_ldb_seq.id` of the single row. */
export const LDB_SEQ_ID = 1;

/** DDL of the bookkeeping tables (ctlstore's column names and types, NOT NULL as it has them). */
export const BOOKKEEPING_DDL: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS ${LDB_SEQ_TABLE} (id INTEGER PRIMARY KEY NOT NULL, seq BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS ${LDB_LAST_UPDATE_TABLE} (` +
  "name VARCHAR(191) PRIMARY KEY NOT NULL, timestamp DATETIME NOT NULL)",
];

/** Creates the bookkeeping tables when missing. */
export function ensureBookkeeping(db: DatabaseSync): void {
  for (const ddl of BOOKKEEPING_DDL) db.exec(ddl);
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/**
 * Formats unix milliseconds the way ctlstore's Go driver (mattn/go-sqlite3) stores a `time.Time`:
 * layout `2006-01-02 15:04:05.999999999-07:00`, in UTC, fraction without trailing zeros (and
 * without the dot when zero). Go readers scanning `_ldb_last_update.timestamp` into a
 * `time.Time` parse exactly this layout first.
 */
export function formatLdbTimestamp(unixMs: number): string {
  if (!Number.isFinite(unixMs)) throw new Error(`timestamp ${unixMs} is not a finite number`);
  const d = new Date(Math.trunc(unixMs));
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  const fraction = pad(d.getUTCMilliseconds(), 3).replace(/0+$/, "");
  return `${base}${fraction ? "." + fraction : ""}+00:00`;
}

/**
 * Parses an `_ldb_last_update.timestamp` to unix milliseconds: our own format, the Go driver's
 * other layouts (`T` separator, `Z` suffix, no zone = UTC) and nanosecond fractions.
 */
export function parseLdbTimestamp(text: string): number | undefined {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$/
      .exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, "0")) : 0;
  let utc = Date.UTC(+y, +mo - 1, +d, +h, +mi, s ? +s : 0, ms);
  if (zone && zone !== "Z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    utc -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
  }
  return utc;
}
