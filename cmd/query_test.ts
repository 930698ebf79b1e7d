import assert from "node:assert/strict";
import { Command } from "commander";
import { LdbError } from "../src/ldb/errors.ts";
import { createTestLdb, type TestTable } from "../src/ldb/testing.ts";
import { buildCommand, prepareProgram, runProgram } from "./cli.ts";
import { queryCommand, runQuery } from "./query.ts";

const TABLE: TestTable = {
  family: "fam",
  table: "users",
  fields: [["id", "integer"], ["name", "string"], ["data", "binary"]],
  keyFields: ["id"],
  rows: [
    { id: 1, name: "ann", data: "AQI=" },
    { id: "9223372036854775807", name: 'say "hi", bob', data: null },
  ],
};

const SQL = "SELECT * FROM fam___users ORDER BY id";

function query(path: string, format: "json" | "ndjson" | "csv" | "table", sql = SQL) {
  return runQuery(sql, { ldb: path, format, maxRows: 100, isTerminal: false });
}

Deno.test("ctl query renders json, ndjson and csv with blobs as base64 and exact big integers", () => {
  using ldb = createTestLdb([TABLE]);
  const expected = [
    { id: 1, name: "ann", data: "AQI=" },
    { id: "9223372036854775807", name: 'say "hi", bob', data: null },
  ];
  assert.deepEqual(JSON.parse(query(ldb.path, "json").text), expected);
  assert.deepEqual(
    query(ldb.path, "ndjson").text.trim().split("\n").map((l) => JSON.parse(l)),
    expected,
  );
  assert.equal(
    query(ldb.path, "csv").text,
    'id,name,data\r\n1,ann,AQI=\r\n9223372036854775807,"say ""hi"", bob",\r\n',
  );
  const table = query(ldb.path, "table").text;
  assert.match(table, /│ id\s+│ name\s+│ data\s+│/);
  assert.match(table, /│ 9223372036854775807 │ say "hi", bob │ NULL │/);
});

Deno.test("ctl query stops at --max-rows and says so", () => {
  using ldb = createTestLdb([TABLE]);
  const result = runQuery(SQL, { ldb: ldb.path, format: "ndjson", maxRows: 1, isTerminal: true });
  assert.equal(result.rowCount, 1);
  assert.equal(result.truncated, true);
  assert.equal(result.text.trim().split("\n").length, 1);
});

Deno.test("ctl query refuses a statement that writes and leaves the LDB unchanged", () => {
  using ldb = createTestLdb([TABLE]);
  for (
    const sql of [
      "DELETE FROM fam___users",
      "INSERT INTO fam___users (id, name) VALUES (5, 'x')",
      "CREATE TABLE evil (x)",
      "DROP TABLE fam___users",
    ]
  ) {
    assert.throws(
      () => query(ldb.path, "json", sql),
      (e) => e instanceof LdbError && e.code === "read_only" && /read-only/.test(e.message),
      sql,
    );
  }
  assert.equal(JSON.parse(query(ldb.path, "json").text).length, 2);
});

Deno.test("ctl query exits non-zero with an error on a write statement or a missing file", async () => {
  using ldb = createTestLdb([TABLE]);
  const program = prepareProgram(new Command("ctl").addCommand(buildCommand(queryCommand)));
  assert.equal(
    await runProgram(program, ["query", "--ldb", ldb.path, "UPDATE fam___users SET name = 'z'"]),
    1,
  );
  assert.equal(await runProgram(program, ["query", "--ldb", "/nonexistent/x.db", "SELECT 1"]), 1);
  assert.equal(ldb.reader.getRowByKey("fam", "users", 1)?.name, "ann");
});
