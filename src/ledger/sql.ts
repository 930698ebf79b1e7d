/**
 * Applies ledger operations to a SQLite database holding `family___table` data tables.
 *
 * One module serves both the system of record and every LDB, so the two can never drift: the
 * same op produces the same rows on every replica. Callers own the transaction; this module
 * never begins or commits one. Ops are assumed validated (src/sor validates before proposing);
 * an invariant broken here is a bug and throws.
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { Buffer } from "node:buffer";
import type { Cell, FieldType, LedgerOp } from "./types.ts";
import { physicalTableName } from "./types.ts";

/** ctlstore's SQLite column type for each field type (kept exactly, for ctlstore readers). */
export const SQLITE_COLUMN_TYPE: Record<FieldType, string> = {
  string: "VARCHAR(191)",
  integer: "INTEGER",
  decimal: "REAL",
  text: "TEXT",
  binary: "BLOB",
  bytestring: "BLOB(255)",
};

const FIELD_TYPE_BY_COLUMN: Record<string, FieldType> = Object.fromEntries(
  Object.entries(SQLITE_COLUMN_TYPE).map(([k, v]) => [v, k as FieldType]),
);

/** The field type a column was declared with, or undefined for a column ctl did not create. */
export function fieldTypeOfColumn(declared: string): FieldType | undefined {
  return FIELD_TYPE_BY_COLUMN[declared.toUpperCase()];
}

/** Quotes an identifier for SQLite. Names are validated upstream; quoting is defence in depth. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A table's columns in declaration order, with their field types and key positions. */
export interface TableLayout {
  name: string;
  columns: { name: string; type: FieldType }[];
  /** Key column names in key order. */
  keys: string[];
  /** Field type by column name. */
  types: Map<string, FieldType>;
}

/** One row touched by an op, as ctlstore's changelog reports it. */
export interface ChangedRow {
  family: string;
  table: string;
  key: { name: string; type: string; value: unknown }[];
}

type UpsertOp = Extract<LedgerOp, { op: "upsert" }>;

/** Rows per multi-row statement at most. */
const STATEMENT_ROWS_MAX = 64;
/** Under SQLite's default limit of 32,766 bound parameters per statement. */
const BOUND_PARAMETERS_MAX = 32_000;

/**
 * How many rows each statement of a multi-row run takes, largest first: powers of two (so a
 * table needs at most 7 prepared statement sizes), at most 64 rows and within SQLite's limit on
 * bound parameters. Yields `[from, rows]` over `[0, total)`.
 */
export function* rowChunks(total: number, paramsPerRow: number): Generator<[number, number]> {
  let widest = STATEMENT_ROWS_MAX;
  while (widest > 1 && widest * paramsPerRow > BOUND_PARAMETERS_MAX) widest >>= 1;
  for (let at = 0; at < total;) {
    let rows = widest;
    while (rows > total - at) rows >>= 1;
    yield [at, rows];
    at += rows;
  }
}

/** Converts a canonical ledger cell to the value bound into SQLite. */
export function cellToSql(type: FieldType, cell: Cell): SQLInputValue {
  if (cell === null) return null;
  switch (type) {
    case "binary":
    case "bytestring":
      return new Uint8Array(Buffer.from(cell as string, "base64"));
    case "integer":
      return typeof cell === "string" ? BigInt(cell) : cell;
    default:
      return cell;
  }
}

/**
 * Applies ops in order against `db`, inside the caller's transaction. Returns the rows changed by
 * data ops (for the changelog). Keeps prepared statements per table; DDL invalidates them.
 */
export class LedgerSqlApplier {
  readonly #db: DatabaseSync;
  readonly #layouts = new Map<string, TableLayout>();
  readonly #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** The layout of `family___table`, read from SQLite itself, or undefined if it does not exist. */
  layout(family: string, table: string): TableLayout | undefined {
    const name = physicalTableName(family, table);
    const cached = this.#layouts.get(name);
    if (cached) return cached;
    const info = this.#db.prepare(`PRAGMA table_info(${quoteIdent(name)})`).all() as {
      name: string;
      type: string;
      pk: number;
    }[];
    if (info.length === 0) return undefined;
    const columns = info.map((c) => {
      const type = fieldTypeOfColumn(c.type);
      if (!type) throw new Error(`table ${name}: column ${c.name} has unknown type ${c.type}`);
      return { name: c.name, type };
    });
    const keys = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    const layout = { name, columns, keys, types: new Map(columns.map((c) => [c.name, c.type])) };
    this.#layouts.set(name, layout);
    return layout;
  }

  /** Forgets cached layouts and statements (after a restore replaced the database contents). */
  reset(): void {
    this.#layouts.clear();
    this.#statements.clear();
  }

  /** `collect = false` skips building the changed rows (the SoR keeps no changelog). */
  apply(ops: readonly LedgerOp[], collect = true): ChangedRow[] {
    const changed: ChangedRow[] = [];
    const out = collect ? changed : null;
    for (let i = 0; i < ops.length;) {
      const op = ops[i];
      if (op.op !== "upsert") {
        this.#applyOne(op, out);
        i++;
        continue;
      }
      // Consecutive upserts into one table go in multi-row INSERTs: SQLite inserts the rows of
      // one statement in order (a later row with the same key updates the earlier one), so the
      // table ends as if each ran alone, at half the cost per row of one statement each.
      let end = i + 1;
      while (end < ops.length) {
        const next = ops[end];
        if (next.op !== "upsert" || next.family !== op.family || next.table !== op.table) break;
        end++;
      }
      this.#upsertRun(ops as readonly UpsertOp[], i, end, out);
      i = end;
    }
    return changed;
  }

  /** Upserts `ops[from..to)`, all into one table, in chunks of a power of two rows. */
  #upsertRun(ops: readonly UpsertOp[], from: number, to: number, changed: ChangedRow[] | null) {
    const first = ops[from];
    const layout = this.#mustLayout(first.family, first.table);
    const { columns } = layout;
    for (const [offset, rows] of rowChunks(to - from, columns.length)) {
      const at = from + offset;
      const stmt = this.#statement(`upsert${rows}`, layout.name, () => upsertSql(layout, rows));
      const params: SQLInputValue[] = new Array(rows * columns.length);
      let p = 0;
      for (let r = at; r < at + rows; r++) {
        const values = ops[r].values;
        for (let c = 0; c < columns.length; c++) {
          params[p++] = cellToSql(columns[c].type, values[columns[c].name] ?? null);
        }
        changed?.push(changedRow(first.family, first.table, layout, values));
      }
      stmt.run(...params);
    }
  }

  #forget(family: string, table: string): void {
    const name = physicalTableName(family, table);
    this.#layouts.delete(name);
    for (const key of [...this.#statements.keys()]) {
      if (key.endsWith(`:${name}`)) this.#statements.delete(key);
    }
  }

  #statement(kind: string, name: string, sql: () => string): StatementSync {
    const key = `${kind}:${name}`;
    let stmt = this.#statements.get(key);
    if (!stmt) {
      stmt = this.#db.prepare(sql());
      this.#statements.set(key, stmt);
    }
    return stmt;
  }

  #mustLayout(family: string, table: string): TableLayout {
    const layout = this.layout(family, table);
    if (!layout) throw new Error(`ledger op on missing table ${physicalTableName(family, table)}`);
    return layout;
  }

  #applyOne(op: LedgerOp, changed: ChangedRow[] | null): void {
    switch (op.op) {
      case "create_family":
        return; // families exist only as a name prefix in the data tables
      case "create_table": {
        const name = physicalTableName(op.family, op.table);
        const cols = op.fields.map(([n, t]) => `${quoteIdent(n)} ${SQLITE_COLUMN_TYPE[t]}`);
        const pk = op.keyFields.map(quoteIdent).join(", ");
        this.#db.exec(`CREATE TABLE ${quoteIdent(name)} (${cols.join(", ")}, PRIMARY KEY (${pk}))`);
        this.#forget(op.family, op.table);
        return;
      }
      case "add_fields": {
        const name = physicalTableName(op.family, op.table);
        for (const [n, t] of op.fields) {
          this.#db.exec(
            `ALTER TABLE ${quoteIdent(name)} ADD COLUMN ${quoteIdent(n)} ${SQLITE_COLUMN_TYPE[t]}`,
          );
        }
        this.#forget(op.family, op.table);
        return;
      }
      case "drop_table":
        this.#db.exec(`DROP TABLE IF EXISTS ${quoteIdent(physicalTableName(op.family, op.table))}`);
        this.#forget(op.family, op.table);
        return;
      case "clear_table":
        this.#db.exec(`DELETE FROM ${quoteIdent(physicalTableName(op.family, op.table))}`);
        return;
      case "upsert":
        return this.#upsertRun([op], 0, 1, changed);
      case "delete": {
        const layout = this.#mustLayout(op.family, op.table);
        const stmt = this.#statement("delete", layout.name, () => {
          const where = layout.keys.map((k) => `${quoteIdent(k)} = ?`).join(" AND ");
          return `DELETE FROM ${quoteIdent(layout.name)} WHERE ${where}`;
        });
        stmt.run(...layout.keys.map((k) => cellToSql(layout.types.get(k)!, op.key[k] ?? null)));
        changed?.push(changedRow(op.family, op.table, layout, op.key));
        return;
      }
    }
  }
}

/**
 * `INSERT … VALUES (…), (…) ON CONFLICT (key) DO UPDATE` of `rows` rows. Updating an existing row
 * in place leaves the key index alone; REPLACE would delete and re-insert both. Every column is
 * given, so the row ends the same either way.
 */
function upsertSql(layout: TableLayout, rows: number): string {
  const cols = layout.columns.map((c) => quoteIdent(c.name)).join(", ");
  const row = `(${layout.columns.map(() => "?").join(", ")})`;
  const keys = new Set(layout.keys);
  const set = layout.columns.filter((c) => !keys.has(c.name))
    .map((c) => `${quoteIdent(c.name)} = excluded.${quoteIdent(c.name)}`);
  const onConflict = set.length === 0 ? "DO NOTHING" : `DO UPDATE SET ${set.join(", ")}`;
  return `INSERT INTO ${quoteIdent(layout.name)} (${cols}) VALUES ${
    new Array(rows).fill(row).join(", ")
  } ON CONFLICT (${layout.keys.map(quoteIdent).join(", ")}) ${onConflict}`;
}

function changedRow(
  family: string,
  table: string,
  layout: TableLayout,
  values: Record<string, Cell>,
): ChangedRow {
  return {
    family,
    table,
    key: layout.keys.map((k) => ({
      name: k,
      type: SQLITE_COLUMN_TYPE[layout.types.get(k)!],
      value: values[k] ?? null,
    })),
  };
}
