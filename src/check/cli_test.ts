import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { EXIT, runCheckCli } from "./cli.ts";
import { formatJsonLinesHistory } from "./jsonl.ts";
import { history } from "./test_histories.ts";

const JEPSEN_DIR = fileURLToPath(
  new URL("../../../shared/histories/jepsen-etcd/", import.meta.url),
);

/** Runs the CLI over in-memory files; returns the exit status and what it printed. */
async function run(args: string[], files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const status = await runCheckCli(args, {
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    readTextFile: (path) => path in files ? Promise.resolve(files[path]) : Deno.readTextFile(path),
  });
  return { status, stdout: out.join("\n"), stderr: err.join("\n") };
}

const staleRead = formatJsonLinesHistory(history(
  [0, "invoke", "write", 1, "a"],
  [0, "ok", "write", 1, "a"],
  [1, "invoke", "read", null, "a"],
  [1, "ok", "read", null, "a"],
));

Deno.test("cli: a linearizable JSON-lines history exits 0", async () => {
  const file = formatJsonLinesHistory(history([0, "invoke", "write", 1], [0, "ok", "write", 1]));
  const { status, stdout } = await run(["h.jsonl"], { "h.jsonl": file });
  assert.equal(status, EXIT.linearizable);
  assert.match(stdout, /h\.jsonl \(jsonl, register model\): linearizable/);
});

Deno.test("cli: a violation exits 1 and explains itself", async () => {
  const { status, stdout } = await run(["h.jsonl"], { "h.jsonl": staleRead });
  assert.equal(status, EXIT.notLinearizable);
  assert.match(stdout, /kv model\): not linearizable/);
  assert.match(
    stdout,
    /longest linearizable prefix found: 1 operations, ending in state \{"a":1\}/,
  );
  assert.match(stdout, /#1 process 1 read\("a"\) -> null \[2, 3\]/);
});

Deno.test("cli: --json prints one parsable object", async () => {
  const { status, stdout } = await run(["--json", "h.jsonl"], { "h.jsonl": staleRead });
  assert.equal(status, EXIT.notLinearizable);
  const result = JSON.parse(stdout);
  assert.equal(result.verdict, "not-linearizable");
  assert.equal(result.model, "kv");
  assert.equal(result.explanation.prefixLength, 1);
  assert.equal(result.explanation.unplaceable.length, 1);
});

Deno.test("cli: Jepsen logs are recognised and checked", async () => {
  const linearizable = await run([`${JEPSEN_DIR}etcd_002.log`]);
  assert.equal(linearizable.status, EXIT.linearizable, linearizable.stdout);
  assert.match(linearizable.stdout, /\(jepsen, register model\): linearizable/);
  const violation = await run([`${JEPSEN_DIR}etcd_000.log`]);
  assert.equal(violation.status, EXIT.notLinearizable);
});

Deno.test("cli: a step limit gives unknown, exit 2", async () => {
  const { status, stdout } = await run(["--steps-max", "5", `${JEPSEN_DIR}etcd_002.log`]);
  assert.equal(status, EXIT.unknown);
  assert.match(stdout, /unknown: step limit reached/);
});

Deno.test("cli: usage errors exit 64 with a hint, bad histories 65", async () => {
  const none = await run([]);
  assert.equal(none.status, EXIT.usage);
  assert.match(none.stderr, /^Error: expected one history file, got 0\nTry: /);
  const badFlag = await run(["--timeout-ms", "soon", "h.jsonl"], { "h.jsonl": staleRead });
  assert.equal(badFlag.status, EXIT.usage);
  assert.match(badFlag.stderr, /--timeout-ms must be a number >= 0, got "soon"/);
  const wrongModel = await run(["--model", "register", "h.jsonl"], { "h.jsonl": staleRead });
  assert.equal(wrongModel.status, EXIT.usage);
  assert.match(wrongModel.stderr, /Try: --model kv/);
  const badModel = await run(["--model", "queue", "/nonexistent/history.jsonl"]);
  assert.equal(badModel.status, EXIT.usage);
  assert.match(badModel.stderr, /unknown --model "queue"\nTry: --model register/);
  const missing = await run(["/nonexistent/history.jsonl"]);
  assert.equal(missing.status, EXIT.usage);
  assert.match(missing.stderr, /Cannot read \/nonexistent\/history\.jsonl/);
  const bad = await run(["h.jsonl"], { "h.jsonl": '{"process":1,"type":"start","f":"read"}' });
  assert.equal(bad.status, EXIT.badHistory);
  assert.match(bad.stderr, /^Error: Cannot read line 1: "type" must be one of/);
  const unknownOp = await run(["h.jsonl"], {
    "h.jsonl": formatJsonLinesHistory(history([0, "invoke", "append", 1], [0, "ok", "append"])),
  });
  assert.equal(unknownOp.status, EXIT.badHistory);
  assert.match(unknownOp.stderr, /Unsupported operation "append"/);
});

Deno.test("cli: runs as a program with its exit status", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      fileURLToPath(new URL("cli.ts", import.meta.url)),
      `${JEPSEN_DIR}etcd_000.log`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, EXIT.notLinearizable, new TextDecoder().decode(output.stderr));
  assert.match(new TextDecoder().decode(output.stdout), /not linearizable/);
});
