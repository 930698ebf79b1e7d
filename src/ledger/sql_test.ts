import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { LedgerSqlApplier } from "./sql.ts";
import type { LedgerOp } from "./types.ts";

function freshDb() {
  const db = new DatabaseSync(":memory:");
  return { db, applier: new LedgerSqlApplier(db) };
}

Deno.test("create_table makes family___table with ctlstore's column types and key order", () => {
  const { db, applier } = freshDb();
  applier.apply([
    {
      op: "create_table",
      family: "fam",
      table: "tbl",
      fields: [
        ["s", "string"],
        ["i", "integer"],
        ["d", "decimal"],
        ["t", "text"],
        ["b", "binary"],
        ["bs", "bytestring"],
      ],
      keyFields: ["i", "s"],
    },
  ]);
  const info = db.prepare("PRAGMA table_info(fam___tbl)").all() as {
    name: string;
    type: string;
    pk: number;
  }[];
  assert.deepEqual(
    info.map((c) => [c.name, c.type, c.pk]),
    [["s", "VARCHAR(191)", 2], ["i", "INTEGER", 1], ["d", "REAL", 0], ["t", "TEXT", 0], [
      "b",
      "BLOB",
      0,
    ], ["bs", "BLOB(255)", 0]],
  );
  assert.deepEqual(applier.layout("fam", "tbl")?.keys, ["i", "s"]);
});

Deno.test("upsert replaces the whole row; delete uses the key; big integers keep precision", () => {
  const { db, applier } = freshDb();
  applier.apply([
    {
      op: "create_table",
      family: "fam",
      table: "tbl",
      fields: [["id", "integer"], ["v", "string"], ["blob", "binary"]],
      keyFields: ["id"],
    },
    {
      op: "upsert",
      family: "fam",
      table: "tbl",
      values: { id: "9223372036854775807", v: "a", blob: "AAEC" },
    },
    { op: "upsert", family: "fam", table: "tbl", values: { id: 1, v: "x", blob: null } },
    { op: "upsert", family: "fam", table: "tbl", values: { id: 1, v: "y", blob: null } },
  ]);
  const stmt = db.prepare("SELECT id, v, blob FROM fam___tbl ORDER BY id");
  stmt.setReadBigInts(true);
  const rows = stmt.all() as { id: bigint; v: string; blob: Uint8Array | null }[];
  assert.equal(rows.length, 2);
  assert.equal(rows[0].id, 1n);
  assert.equal(rows[0].v, "y");
  assert.equal(rows[1].id, 9223372036854775807n);
  assert.deepEqual([...rows[1].blob!], [0, 1, 2]);
  const changed = applier.apply([
    { op: "delete", family: "fam", table: "tbl", key: { id: 1 } },
  ]);
  assert.deepEqual(changed, [{
    family: "fam",
    table: "tbl",
    key: [{ name: "id", type: "INTEGER", value: 1 }],
  }]);
  assert.equal((db.prepare("SELECT count(*) AS n FROM fam___tbl").get() as { n: number }).n, 1);
});

Deno.test("add_fields adds nullable columns that later upserts fill", () => {
  const { db, applier } = freshDb();
  applier.apply([
    {
      op: "create_table",
      family: "fam",
      table: "tbl",
      fields: [["id", "string"]],
      keyFields: ["id"],
    },
    { op: "upsert", family: "fam", table: "tbl", values: { id: "a" } },
    { op: "add_fields", family: "fam", table: "tbl", fields: [["n", "integer"]] },
    { op: "upsert", family: "fam", table: "tbl", values: { id: "b", n: 7 } },
  ]);
  const rows = db.prepare("SELECT id, n FROM fam___tbl ORDER BY id").all();
  assert.deepEqual(rows.map((r) => ({ ...r })), [{ id: "a", n: null }, { id: "b", n: 7 }]);
});

Deno.test("clear_table empties and drop_table removes the table", () => {
  const { db, applier } = freshDb();
  applier.apply([
    {
      op: "create_table",
      family: "fam",
      table: "tbl",
      fields: [["id", "string"]],
      keyFields: ["id"],
    },
    { op: "upsert", family: "fam", table: "tbl", values: { id: "a" } },
    { op: "clear_table", family: "fam", table: "tbl" },
  ]);
  assert.equal((db.prepare("SELECT count(*) AS n FROM fam___tbl").get() as { n: number }).n, 0);
  applier.apply([{ op: "drop_table", family: "fam", table: "tbl" }]);
  assert.equal(applier.layout("fam", "tbl"), undefined);
  assert.throws(() =>
    applier.apply([{ op: "upsert", family: "fam", table: "tbl", values: { id: "a" } }])
  );
});

Deno.test("a long run of upserts ends as applying each op alone, repeated keys included", () => {
  // Consecutive upserts into one table go in multi-row statements; the result must be the same
  // rows, and the same changed rows in the same order, as one statement per op.
  const create = {
    op: "create_table" as const,
    family: "fam",
    table: "tbl",
    fields: [["a", "string"], ["b", "integer"], ["v", "text"], ["blob", "binary"]] as [
      string,
      "string" | "integer" | "text" | "binary",
    ][],
    keyFields: ["a", "b"],
  };
  const ops: LedgerOp[] = [create];
  for (let i = 0; i < 300; i++) {
    // 40 distinct keys, so later rows in one statement update earlier ones.
    const key = { a: `k${i % 8}`, b: i % 5 === 0 ? "9007199254740993" : i % 5 };
    ops.push(
      i % 97 === 50 ? { op: "delete", family: "fam", table: "tbl", key } : {
        op: "upsert",
        family: "fam",
        table: i % 61 === 7 ? "other" : "tbl",
        values: { ...key, v: `v${i}\u00e9`, blob: i % 3 === 0 ? null : btoa(`b${i}`) },
      },
    );
  }
  ops.splice(1, 0, { ...create, table: "other" });
  const batched = freshDb();
  const oneByOne = freshDb();
  const changedBatched = batched.applier.apply(ops);
  const changedOneByOne = ops.flatMap((op) => oneByOne.applier.apply([op]));
  assert.deepEqual(changedBatched, changedOneByOne);
  assert.equal(changedBatched.length, 300);
  for (const table of ["fam___tbl", "fam___other"]) {
    const dump = (db: DatabaseSync) =>
      db.prepare(`SELECT a, CAST(b AS TEXT) AS b, v, hex(blob) AS blob FROM ${table} ORDER BY a, b`)
        .all();
    const rows = dump(batched.db);
    assert.ok(rows.length >= 3);
    assert.deepEqual(rows, dump(oneByOne.db));
  }
});
