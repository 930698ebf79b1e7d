import assert from "node:assert/strict";
import { Command } from "commander";
import { createTestLdb } from "../src/ldb/testing.ts";
import { buildCommand, prepareProgram, runProgram } from "./cli.ts";
import { getCommand, getRowJson } from "./get.ts";

Deno.test("ctl get prints the row for a full key, converting integer and bytestring keys", () => {
  using ldb = createTestLdb([{
    family: "fam",
    table: "routes",
    fields: [["host", "bytestring"], ["port", "integer"], ["target", "string"]],
    keyFields: ["host", "port"],
    rows: [{ host: btoa("example.com"), port: "9007199254740993", target: "10.0.0.1" }],
  }]);
  assert.deepEqual(
    JSON.parse(getRowJson(ldb.path, "fam", "routes", ["example.com", "9007199254740993"])!),
    { host: btoa("example.com"), port: "9007199254740993", target: "10.0.0.1" },
  );
  assert.equal(getRowJson(ldb.path, "fam", "routes", ["example.com", "80"]), undefined);
});

Deno.test("ctl get exits 1 when the row or the table is missing", async () => {
  using ldb = createTestLdb([{
    family: "fam",
    table: "flags",
    fields: [["name", "string"]],
    keyFields: ["name"],
    rows: [{ name: "on" }],
  }]);
  const program = () => prepareProgram(new Command("ctl").addCommand(buildCommand(getCommand)));
  assert.equal(await runProgram(program(), ["get", "--ldb", ldb.path, "fam", "flags", "on"]), 0);
  assert.equal(await runProgram(program(), ["get", "--ldb", ldb.path, "fam", "flags", "off"]), 1);
  assert.equal(await runProgram(program(), ["get", "--ldb", ldb.path, "fam", "nope", "x"]), 1);
});
