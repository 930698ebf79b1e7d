/**
 * Test helpers for applications that read the LDB: build a temporary LDB holding the tables and
 * rows a test needs, through the same writer the reflector uses, so the file is a real LDB.
 */
import { join } from "node:path";
import type { Cell, FieldTuple, LedgerOp } from "../ledger/types.ts";
import { type LdbReader, openLdb } from "./reader.ts";
import { LdbWriter } from "./writer.ts";

/** A table to create in a test LDB, with its initial rows (every field, canonical encoding). */
export interface TestTable {
  family: string;
  table: string;
  fields: FieldTuple[];
  keyFields: string[];
  rows?: Record<string, Cell>[];
}

/** A temporary LDB: read it with `reader`, change it with `write`, delete it with `close`. */
export interface TestLdb {
  /** The LDB file. */
  path: string;
  /** A reader opened on the file (default options); `write` refreshes it, so it sees each write. */
  reader: LdbReader;
  /** Applies ops as the next ledger entry (leader timestamp `tsMs`, default now); returns its seq. */
  write(ops: LedgerOp[], tsMs?: number): number;
  /** Upserts rows (every field given) into a table; returns the entry's seq. */
  upsert(family: string, table: string, rows: Record<string, Cell>[]): number;
  /** Closes the reader and writer and removes the temporary directory. */
  close(): void;
  [Symbol.dispose](): void;
}

/** Creates a temporary LDB with `tables` and their rows applied as ledger entry 1. */
export function createTestLdb(tables: readonly TestTable[] = []): TestLdb {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-test-ldb-" });
  const path = join(dir, "ldb.db");
  const writer = LdbWriter.open(path);
  const reader = openLdb(path);
  const write = (ops: LedgerOp[], tsMs = Date.now()): number => {
    const seq = writer.seq + 1;
    writer.applyBatch([{ seq, ts: tsMs, family: null, ops }]);
    // Its shared snapshot would hide this write for up to a millisecond.
    reader.refresh();
    return seq;
  };
  const ops: LedgerOp[] = [];
  for (const t of tables) {
    ops.push({
      op: "create_table",
      family: t.family,
      table: t.table,
      fields: t.fields,
      keyFields: t.keyFields,
    });
    for (const values of t.rows ?? []) {
      ops.push({ op: "upsert", family: t.family, table: t.table, values });
    }
  }
  write(ops);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    reader.close();
    writer.close();
    Deno.removeSync(dir, { recursive: true });
  };
  return {
    path,
    reader,
    write,
    upsert: (family, table, rows) =>
      write(rows.map((values) => ({ op: "upsert", family, table, values }))),
    close,
    [Symbol.dispose]: close,
  };
}
