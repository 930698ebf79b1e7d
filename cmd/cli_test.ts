import assert from "node:assert/strict";
import { Command } from "commander";
import { buildCommand, type CommandSpec, envName, prepareProgram, runProgram } from "./cli.ts";

function programWith(spec: CommandSpec): Command {
  const program = new Command("ctl");
  program.addCommand(buildCommand(spec));
  return prepareProgram(program);
}

function captureSpec(seen: Record<string, unknown>[]): CommandSpec {
  return {
    name: "demo",
    summary: "a command for testing the flag table",
    args: ["[rest...]"],
    flags: [
      { name: "listen-addr", type: "string", help: "where to listen", default: "127.0.0.1:7001" },
      { name: "batch-size", type: "int", help: "rows per batch", default: 100 },
      { name: "interval", type: "duration", help: "how often", default: "5m" },
      { name: "peers", type: "list", help: "peer URLs" },
      { name: "destructive", type: "bool", help: "allow drops" },
    ],
    run: (opts) => {
      seen.push(opts);
      return Promise.resolve(0);
    },
  };
}

function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  return fn().finally(() => {
    for (const k of Object.keys(vars)) Deno.env.delete(k);
  });
}

Deno.test("envName maps a flag to CTL_<FLAG_NAME>", () => {
  assert.equal(envName("log-level"), "CTL_LOG_LEVEL");
  assert.equal(envName("ldb"), "CTL_LDB");
});

Deno.test("defaults apply when neither flag nor environment sets a value", async () => {
  const seen: Record<string, unknown>[] = [];
  assert.equal(await runProgram(programWith(captureSpec(seen)), ["demo"]), 0);
  assert.equal(seen[0].listenAddr, "127.0.0.1:7001");
  assert.equal(seen[0].batchSize, 100);
  assert.equal(seen[0].interval, 300_000);
  assert.equal(seen[0].destructive, undefined);
});

Deno.test("precedence is flag > environment > default", async () => {
  const seen: Record<string, unknown>[] = [];
  await withEnv(
    { CTL_BATCH_SIZE: "7", CTL_LISTEN_ADDR: "0.0.0.0:1", CTL_DESTRUCTIVE: "true" },
    () => runProgram(programWith(captureSpec(seen)), ["demo", "--listen-addr", "10.0.0.1:2"]),
  );
  assert.equal(seen[0].listenAddr, "10.0.0.1:2", "the flag wins over the environment");
  assert.equal(seen[0].batchSize, 7, "the environment wins over the default");
  assert.equal(seen[0].destructive, true);
});

Deno.test("a bool set to false in the environment stays off", async () => {
  const seen: Record<string, unknown>[] = [];
  await withEnv(
    { CTL_DESTRUCTIVE: "false" },
    () => runProgram(programWith(captureSpec(seen)), ["demo"]),
  );
  assert.equal(seen[0].destructive, false);
});

Deno.test("list and duration flags are parsed", async () => {
  const seen: Record<string, unknown>[] = [];
  await runProgram(programWith(captureSpec(seen)), [
    "demo",
    "--peers",
    "e1=http://a:1, e2=http://b:2",
    "--interval",
    "15s",
  ]);
  assert.deepEqual(seen[0].peers, ["e1=http://a:1", "e2=http://b:2"]);
  await runProgram(programWith(captureSpec(seen)), ["demo", "--peers", "a", "--peers", "b,c"]);
  assert.deepEqual(seen[1].peers, ["a", "b", "c"], "a repeated list flag accumulates");
  assert.equal(seen[0].interval, 15_000);
});

Deno.test("bad values, unknown flags and unknown commands exit 2", async () => {
  const seen: Record<string, unknown>[] = [];
  const spec = captureSpec(seen);
  assert.equal(await runProgram(programWith(spec), ["demo", "--batch-size", "x"]), 2);
  assert.equal(await runProgram(programWith(spec), ["demo", "--interval", "soon"]), 2);
  assert.equal(await runProgram(programWith(spec), ["demo", "--no-such-flag"]), 2);
  assert.equal(await runProgram(programWith(spec), ["nosuchcommand"]), 2);
  assert.equal(seen.length, 0, "nothing ran");
});
