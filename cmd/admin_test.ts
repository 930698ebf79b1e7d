/**
 * The admin commands end to end: `ctl family|table|writer|limits|schema|mutate` against a local
 * executive served on a loopback port.
 */
import assert from "node:assert/strict";
import { Command } from "commander";
import { createExecutiveApp } from "../src/executive/app.ts";
import { LOCAL_ADMIN_TOKEN, LocalExecutive } from "../src/executive/local.ts";
import { buildCommand, prepareProgram, runProgram } from "./cli.ts";
import { familyCommand } from "./admin_family.ts";
import { tableCommand } from "./admin_table.ts";
import { writerCommand } from "./admin_writer.ts";
import { limitsCommand } from "./admin_limits.ts";
import { schemaCommand } from "./admin_schema.ts";
import { batchMutations, mutateCommand, parseMutationInput } from "./admin_mutate.ts";
import { clusterCommand } from "./admin_cluster.ts";

function program(): Command {
  const p = new Command("ctl");
  for (
    const spec of [
      familyCommand,
      tableCommand,
      writerCommand,
      limitsCommand,
      schemaCommand,
      mutateCommand,
      clusterCommand,
    ]
  ) {
    p.addCommand(buildCommand(spec));
  }
  return prepareProgram(p);
}

/** Runs `fn` with console output silenced and collected. */
async function quietly<T>(fn: () => Promise<T>): Promise<{ result: T; out: string[] }> {
  const out: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => out.push(a.join(" "));
  try {
    return { result: await fn(), out };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("parseMutationInput reads JSON arrays, request objects and NDJSON", () => {
  const m = { table: "t", values: { id: 1 } };
  assert.deepEqual(parseMutationInput(JSON.stringify([m, m])), [m, m]);
  assert.deepEqual(parseMutationInput(JSON.stringify({ mutations: [m] })), [m]);
  assert.deepEqual(parseMutationInput(`${JSON.stringify(m)}\n\n${JSON.stringify(m)}\n`), [m, m]);
  assert.deepEqual(parseMutationInput(JSON.stringify(m)), [m]);
  assert.throws(() => parseMutationInput(`${JSON.stringify(m)}\n{nope`), /line 2/);
  assert.throws(() => parseMutationInput(`[1]`), /mutation 1/);
});

Deno.test("batchMutations keeps batches within 100 mutations and the byte budget", () => {
  const m = (i: number) => ({ table: "t", values: { id: i, pad: "x".repeat(100) } });
  const batches = batchMutations(Array.from({ length: 250 }, (_, i) => m(i)));
  assert.deepEqual(batches.map((b) => b.length), [100, 100, 50]);
  const small = batchMutations(Array.from({ length: 10 }, (_, i) => m(i)), 100, 400);
  assert.ok(small.every((b) => JSON.stringify(b).length <= 400 + 200));
  assert.equal(small.flat().length, 10);
});

Deno.test("ctl admin commands create schema, writers, limits and apply a mutations file", async () => {
  const deps = new LocalExecutive();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createExecutiveApp(deps).fetch,
  );
  const dir = await Deno.makeTempDir();
  try {
    const exec = ["--executive", `http://127.0.0.1:${server.addr.port}`];
    const admin = [...exec, "--admin-token", LOCAL_ADMIN_TOKEN];
    const run = async (...argv: string[]) => (await quietly(() => runProgram(program(), argv)));
    assert.equal((await run("family", "create", "fam", ...admin)).result, 0);
    assert.equal(
      (await run(
        "table",
        "create",
        "fam",
        "users",
        "id:string",
        "n:integer",
        "--key",
        "id",
        ...admin,
      )).result,
      0,
    );
    assert.equal(
      (await run("table", "add-fields", "fam", "users", "--field", "note:text", ...admin)).result,
      0,
    );
    assert.deepEqual(deps.sor.tableSchema("fam", "users")?.fields, [["id", "string"], [
      "n",
      "integer",
    ], [
      "note",
      "text",
    ]]);
    // The brief's form: --field repeated, each adding a field.
    assert.equal(
      (await run(
        "table",
        "create",
        "fam",
        "pairs",
        "--field",
        "id:string",
        "--field",
        "n:integer,b:binary",
        "--key",
        "id",
        ...admin,
      )).result,
      0,
    );
    assert.deepEqual(deps.sor.tableSchema("fam", "pairs")?.fields, [
      ["id", "string"],
      ["n", "integer"],
      ["b", "binary"],
    ]);
    assert.equal(
      (await run("writer", "register", "writer1", "--secret", "secret1", ...admin)).result,
      0,
    );
    assert.equal(
      (await run(
        "limits",
        "table",
        "set",
        "fam",
        "users",
        "--max-size",
        "1000000",
        "--warn-size",
        "1000",
        ...admin,
      )).result,
      0,
    );
    assert.equal(deps.sor.tableLimit("fam", "users")?.maxSizeBytes, 1000000);
    assert.equal(
      (await run(
        "limits",
        "writer",
        "set",
        "writer1",
        "--amount",
        "100",
        "--period",
        "1s",
        ...admin,
      )).result,
      0,
    );
    assert.equal(deps.sor.writerLimit("writer1")?.rowsPerMinute, 6000);

    const file = `${dir}/rows.ndjson`;
    const lines = Array.from(
      { length: 250 },
      (_, i) => JSON.stringify({ table: "users", values: { id: `u${i}`, n: i, note: null } }),
    );
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    const before = deps.sor.lastSeq();
    const mutated = await run(
      "mutate",
      "fam",
      file,
      "--writer",
      "writer1",
      "--secret",
      "secret1",
      ...exec,
    );
    assert.equal(mutated.result, 0, mutated.out.join("\n"));
    assert.equal(deps.sor.lastSeq(), before + 3, "250 mutations go in 3 batches");
    assert.ok(mutated.out.includes(String(before + 3)), "prints the last seq");
    assert.equal(deps.sor.checksums().find((c) => c.table === "users")?.rows, 250);

    const schema = await run("schema", "fam", "users", ...exec);
    assert.equal(schema.result, 0);
    assert.deepEqual(JSON.parse(schema.out.join("\n")).keyFields, ["id"]);

    // Failures exit non-zero with the executive's message, and change nothing.
    const failed = await run("family", "create", "fam", ...admin);
    assert.equal(failed.result, 1);
    assert.match(failed.out.join("\n"), /exists/);
    assert.equal(
      (await run("family", "create", "other", ...exec)).result,
      2,
      "no admin token is a usage error",
    );
    assert.equal((await run("table", "clear", "fam", ...admin)).result, 0);
    const status = await run("cluster", "status", ...exec);
    assert.equal(status.result, 0);
    assert.equal(JSON.parse(status.out.join("\n")).healthy, true);
    const add = await run("cluster", "add", "e4", "http://127.0.0.1:1", ...admin);
    assert.equal(add.result, 1, "a single-node executive has no membership to change");
    assert.match(add.out.join("\n"), /membership/);
    assert.equal(deps.sor.checksums().find((c) => c.table === "users")?.rows, 0);
  } finally {
    await server.shutdown();
    deps.close();
    await Deno.remove(dir, { recursive: true });
  }
});
