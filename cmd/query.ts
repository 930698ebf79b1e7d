/**
 * `ctl query --ldb FILE "SQL"`: ad-hoc SQL over the LDB, opened read-only so a query can never
 * change what the reflector wrote.
 */
import Table from "cli-table3";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { LdbError } from "../src/ldb/errors.ts";
import { type JsonValue, rowToJson } from "../src/ldb/json.ts";
import { openReaderDatabase } from "../src/ldb/sqlite.ts";
import { openLdb } from "../src/ldb/reader.ts";
import type { CommandSpec } from "./cli.ts";
import { writeAllSync } from "../src/util/write_all.ts";

export const QUERY_FORMATS = ["auto", "table", "json", "ndjson", "csv"] as const;
export type QueryFormat = typeof QUERY_FORMATS[number];

/** Most rows `ctl query` prints unless --max-rows says otherwise. */
export const QUERY_ROWS_DEFAULT = 10_000;

export interface QueryOptions {
  ldb: string;
  format: QueryFormat;
  maxRows: number;
  /** Whether stdout is a terminal (picks the `auto` format). */
  isTerminal: boolean;
}

export interface QueryResult {
  /** The rendered output. */
  text: string;
  rowCount: number;
  /** True when more rows than maxRows matched and the rest were left out. */
  truncated: boolean;
}

/** Runs one SQL statement read-only against the LDB and renders its rows. */
export function runQuery(sql: string, options: QueryOptions): QueryResult {
  if (!Number.isSafeInteger(options.maxRows) || options.maxRows < 1) {
    throw new RangeError(`--max-rows ${options.maxRows} must be a positive integer`);
  }
  let db;
  try {
    db = openReaderDatabase(options.ldb);
  } catch (e) {
    throw new LdbError(
      "ldb_unavailable",
      `Cannot open LDB "${options.ldb}": ${e instanceof Error ? e.message : e}`,
    );
  }
  try {
    const stmt = prepare(db, sql);
    const columns = stmt.columns().map((c) => c.name);
    let fetched: Record<string, unknown>[];
    try {
      if (columns.length === 0) {
        // DDL, DML or a silent PRAGMA: run it so a refused write surfaces as an error.
        stmt.run();
        fetched = [];
      } else {
        // Deno's StatementSync.iterate() swallows step errors (a refused write, an overflow), so
        // rows are fetched with all(); a query is wrapped in a LIMIT to bound what is held.
        const bounded = isQuery(sql)
          ? prepare(db, `SELECT * FROM (${stripSemicolons(sql)}) LIMIT ${options.maxRows + 1}`)
          : stmt;
        bounded.setReadBigInts(true);
        fetched = bounded.all() as Record<string, unknown>[];
      }
    } catch (e) {
      throw asReadOnly(e, sql);
    }
    const truncated = fetched.length > options.maxRows;
    const rows = fetched.slice(0, options.maxRows).map(rowToJson);
    const format = options.format === "auto"
      ? (options.isTerminal ? "table" : "ndjson")
      : options.format;
    return { text: render(format, columns, rows), rowCount: rows.length, truncated };
  } finally {
    db.close();
  }
}

function prepare(db: DatabaseSync, sql: string): StatementSync {
  try {
    return db.prepare(sql);
  } catch (e) {
    throw asReadOnly(e, sql);
  }
}

/** A statement that can sit in a FROM clause: SELECT, WITH … SELECT, VALUES. */
function isQuery(sql: string): boolean {
  return /^\s*(select|with|values)\b/i.test(stripComments(sql));
}

function stripComments(sql: string): string {
  return sql.replace(/^(\s*(--[^\n]*\n|\/\*[\s\S]*?\*\/))*/, "");
}

function stripSemicolons(sql: string): string {
  return sql.replace(/[;\s]+$/, "");
}

function asReadOnly(e: unknown, sql: string): unknown {
  const message = e instanceof Error ? e.message : String(e);
  if (/readonly|read-only|query_only/i.test(message)) {
    return new LdbError(
      "read_only",
      `ctl query opens the LDB read-only; refusing to run a statement that writes: ` +
        `${sql.trim().slice(0, 80)}`,
    );
  }
  return e;
}

function render(
  format: Exclude<QueryFormat, "auto">,
  columns: string[],
  rows: Record<string, JsonValue>[],
): string {
  switch (format) {
    case "json":
      return JSON.stringify(rows, null, 2) + "\n";
    case "ndjson":
      return rows.map((r) => JSON.stringify(r) + "\n").join("");
    case "csv":
      return [columns, ...rows.map((r) => columns.map((c) => r[c]))]
        .map((cells) => cells.map(csvCell).join(",") + "\r\n").join("");
    case "table": {
      const table = new Table({ head: columns, style: { head: [], border: [] } });
      for (const r of rows) table.push(columns.map((c) => r[c] === null ? "NULL" : String(r[c])));
      return table.toString() + "\n";
    }
  }
}

/** RFC 4180: quote a cell holding a comma, quote, CR or LF; double inner quotes. NULL is empty. */
function csvCell(value: JsonValue): string {
  if (value === null) return "";
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The `ctl query` command. */
export const queryCommand: CommandSpec = {
  name: "query",
  summary: "run a read-only SQL query against the LDB",
  description: "Runs one SQL statement against the LDB, opened read-only (a statement that " +
    "writes is refused), and prints the rows: a table on a terminal, NDJSON otherwise.",
  args: ["<sql>"],
  flags: [
    { name: "ldb", type: "string", help: "LDB file", required: true, placeholder: "FILE" },
    {
      name: "format",
      type: "string",
      help: "output format (auto = table on a terminal, ndjson otherwise)",
      default: "auto",
      choices: QUERY_FORMATS,
    },
    {
      name: "max-rows",
      type: "int",
      help: "most rows to print",
      default: QUERY_ROWS_DEFAULT,
      placeholder: "N",
    },
    {
      name: "min-seq",
      type: "int",
      help: "first wait until the LDB has applied this ledger seq (the seq a write returned)",
      placeholder: "SEQ",
    },
    {
      name: "wait",
      type: "duration",
      help: "longest wait for --min-seq",
      default: "10s",
    },
  ],
  run: async (opts, args) => {
    if (opts.minSeq !== undefined) {
      const reader = openLdb(String(opts.ldb));
      try {
        await reader.waitForSeq(Number(opts.minSeq), Number(opts.wait));
      } finally {
        reader.close();
      }
    }
    const result = runQuery(String(args[0]), {
      ldb: String(opts.ldb),
      format: opts.format as QueryFormat,
      maxRows: Number(opts.maxRows),
      isTerminal: Deno.stdout.isTerminal(),
    });
    writeAll(result.text);
    if (result.truncated) {
      console.error(`Note: output stopped at ${result.rowCount} rows (--max-rows)`);
    }
    return 0;
  },
};

function writeAll(text: string): void {
  writeAllSync(Deno.stdout, new TextEncoder().encode(text));
}
