import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { LedgerSqlApplier } from "./sql.ts";

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
