import assert from "node:assert/strict";
import { CtlError } from "./errors.ts";
import {
  canonicalCell,
  deleteKey,
  familyName,
  fieldName,
  mutationOps,
  rawMutations,
  rowsPerMinute,
  tableDefinition,
  tableName,
  type TableSchema,
  upsertValues,
  writerName,
} from "./validate.ts";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CtlError, `expected CtlError, got ${e}`);
    return e.code;
  }
  throw new Error("expected a CtlError, nothing was thrown");
}

Deno.test("names are lower-cased and checked against ctlstore's table", () => {
  assert.equal(familyName("MyFamily"), "myfamily");
  assert.equal(tableName("abc_def1"), "abc_def1");
  assert.equal(fieldName("a__b"), "a__b");
  assert.equal(fieldName("x"), "x");
  for (const bad of ["ab", "abc-123", "1abc", "a__b", "abc_", "x".repeat(31), "", "été"]) {
    assert.equal(code(() => familyName(bad)), "invalid_name", bad);
  }
  assert.equal(tableName("t".repeat(50)), "t".repeat(50));
  for (const bad of ["ab", "abc-123", "1abc", "a__b", "tbl_", "t".repeat(51)]) {
    assert.equal(code(() => tableName(bad)), "invalid_name", bad);
  }
  for (const bad of ["", "1a", "a-b", "f".repeat(65)]) {
    assert.equal(code(() => fieldName(bad)), "invalid_name", bad);
  }
  assert.equal(code(() => familyName(42)), "invalid_name");
  assert.equal(writerName("Writer One!"), "Writer One!");
  assert.equal(code(() => writerName("ab")), "invalid_name");
  assert.equal(code(() => writerName("bad\nname")), "invalid_name");
});

Deno.test("a table definition needs known types and key fields of key-capable types", () => {
  const ok = tableDefinition("Fam", "Tbl", [["ID", "string"], ["n", "INTEGER"]], ["id"]);
  assert.deepEqual(ok, {
    family: "fam",
    name: "tbl",
    fields: [["id", "string"], ["n", "integer"]],
    keyFields: ["id"],
  });
  const bad = (fields: unknown, keys: unknown) =>
    code(() => tableDefinition("fam", "tbl", fields, keys));
  assert.equal(bad([["id", "uuid"]], ["id"]), "invalid_field_type");
  assert.equal(bad([["id", "string", "x"]], ["id"]), "bad_request");
  assert.equal(bad([["id", "string"]], []), "bad_request");
  assert.equal(bad([["id", "string"]], ["nope"]), "bad_request");
  assert.equal(bad([["id", "decimal"]], ["id"]), "bad_request");
  assert.equal(bad([["id", "text"]], ["id"]), "bad_request");
  assert.equal(bad([["id", "string"], ["ID", "integer"]], ["id"]), "bad_request");
  assert.equal(bad("nope", ["id"]), "bad_request");
});

Deno.test("values are checked against their type and size and made canonical", () => {
  assert.equal(canonicalCell("s", "string", "é".repeat(191)), "é".repeat(191));
  assert.equal(code(() => canonicalCell("s", "string", "x".repeat(192))), "invalid_value");
  assert.equal(canonicalCell("s", "string", "😀"), "😀");
  assert.equal(code(() => canonicalCell("s", "string", "a\u0000b")), "invalid_value");
  assert.equal(code(() => canonicalCell("s", "text", "\ud800")), "invalid_value");
  assert.equal(code(() => canonicalCell("s", "string", 5)), "invalid_value");
  assert.equal(String(canonicalCell("t", "text", "x".repeat(512 * 1024))).length, 512 * 1024);
  assert.equal(code(() => canonicalCell("t", "text", "x".repeat(512 * 1024 + 1))), "invalid_value");

  assert.equal(canonicalCell("i", "integer", 42), 42);
  assert.equal(canonicalCell("i", "integer", "42"), 42);
  assert.equal(canonicalCell("i", "integer", "9223372036854775807"), "9223372036854775807");
  assert.equal(canonicalCell("i", "integer", "-9223372036854775808"), "-9223372036854775808");
  assert.equal(code(() => canonicalCell("i", "integer", "9223372036854775808")), "invalid_value");
  assert.equal(code(() => canonicalCell("i", "integer", 2 ** 60)), "invalid_value");
  assert.equal(code(() => canonicalCell("i", "integer", 1.5)), "invalid_value");
  assert.equal(code(() => canonicalCell("i", "integer", "1e3")), "invalid_value");
  assert.equal(code(() => canonicalCell("i", "integer", true)), "invalid_value");

  assert.equal(canonicalCell("d", "decimal", 1.25), 1.25);
  assert.equal(code(() => canonicalCell("d", "decimal", "1.25")), "invalid_value");
  assert.equal(code(() => canonicalCell("d", "decimal", { x: 1 })), "invalid_value");

  assert.equal(canonicalCell("b", "binary", "AAE"), "AAE=");
  assert.equal(canonicalCell("b", "bytestring", btoa("x".repeat(255))), btoa("x".repeat(255)));
  assert.equal(
    code(() => canonicalCell("b", "bytestring", btoa("x".repeat(256)))),
    "invalid_value",
  );
  assert.equal(code(() => canonicalCell("b", "binary", "not base64!")), "invalid_value");
  assert.equal(code(() => canonicalCell("b", "binary", [1, 2])), "invalid_value");
  assert.equal(canonicalCell("b", "binary", null), null);
});

const USERS: TableSchema = {
  family: "fam",
  name: "users",
  fields: [["id", "string"], ["n", "integer"], ["note", "text"]],
  keyFields: ["id"],
};

Deno.test("an upsert names every field, no unknown field, and no null key", () => {
  assert.deepEqual(upsertValues(USERS, { ID: "a", n: 1, note: null }), {
    id: "a",
    n: 1,
    note: null,
  });
  assert.equal(code(() => upsertValues(USERS, { id: "a", n: 1 })), "missing_field");
  assert.equal(
    code(() => upsertValues(USERS, { id: "a", n: 1, note: null, x: 1 })),
    "unknown_field",
  );
  assert.equal(code(() => upsertValues(USERS, { id: null, n: 1, note: null })), "invalid_value");
  assert.deepEqual(deleteKey(USERS, { id: "a" }), { id: "a" });
  assert.equal(code(() => deleteKey(USERS, { id: "a", n: 1 })), "bad_request");
  assert.equal(code(() => deleteKey(USERS, {})), "missing_field");
});

Deno.test("a batch has at most 100 mutations, known tables, and each key once", () => {
  const schemaOf = (t: string) => (t === "users" ? USERS : undefined);
  const row = (id: string) => ({ table: "users", values: { id, n: 1, note: "x" } });
  const ops = mutationOps("fam", rawMutations([row("a"), row("b")], "fam"), schemaOf);
  assert.equal(ops.length, 2);
  assert.equal(
    code(() => rawMutations(Array.from({ length: 101 }, (_, i) => row(`${i}`)), "fam")),
    "too_many_mutations",
  );
  assert.equal(
    code(() =>
      mutationOps(
        "fam",
        rawMutations([row("a"), { table: "users", delete: true, values: { id: "a" } }], "fam"),
        schemaOf,
      )
    ),
    "duplicate_key",
  );
  assert.equal(
    code(() => mutationOps("fam", [{ table: "nope", delete: false, values: {} }], schemaOf)),
    "table_not_found",
  );
  assert.equal(
    code(() => rawMutations([{ table: "users", values: {}, extra: 1 }], "fam")),
    "unknown_field",
  );
  assert.equal(code(() => rawMutations({}, "fam")), "bad_request");
});

Deno.test("writer rate limits convert to rows per minute as ctlstore stores them", () => {
  assert.equal(rowsPerMinute(1, "1s"), 60);
  assert.equal(rowsPerMinute(170, "1s"), 10200);
  assert.equal(rowsPerMinute(500, "1m"), 500);
  assert.equal(rowsPerMinute(120, "h"), 2);
  assert.equal(code(() => rowsPerMinute(1, "1h")), "bad_request");
  assert.equal(code(() => rowsPerMinute(0, "1m")), "bad_request");
  assert.equal(code(() => rowsPerMinute(5, "1d")), "bad_request");
});
