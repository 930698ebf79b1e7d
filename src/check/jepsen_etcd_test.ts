import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { checkEvents } from "./checker.ts";
import { eventsToOperations, UNKNOWN } from "./history.ts";
import { parseJepsenEtcdLog } from "./jepsen_etcd.ts";
import { registerModel } from "./register_model.ts";

/** `/work/main/src/check/` → `/work/main/` → `/work/shared/histories/jepsen-etcd/`. */
const HISTORIES_DIR = fileURLToPath(
  new URL("../../../shared/histories/jepsen-etcd/", import.meta.url),
);
/** Porcupine checks each of these well under a second; allow for a slower, shared machine. */
const PER_HISTORY_MS_MAX = 2_000;

function readVerdicts(): [file: string, linearizable: boolean][] {
  if (!existsSync(`${HISTORIES_DIR}VERDICTS.tsv`)) {
    throw new Error(
      `Cannot find the reference histories: ${HISTORIES_DIR}VERDICTS.tsv is missing ` +
        `(they live in ../shared/histories beside the repository)`,
    );
  }
  const rows = Deno.readTextFileSync(`${HISTORIES_DIR}VERDICTS.tsv`).trim().split("\n");
  return rows.map((row) => {
    const [file, verdict] = row.split("\t");
    assert.ok(verdict === "linearizable" || verdict === "not-linearizable", row);
    return [file, verdict === "linearizable"];
  });
}

Deno.test("every Jepsen etcd history gets its reference verdict, each fast", async (t) => {
  const verdicts = readVerdicts();
  assert.equal(verdicts.length, 80);
  assert.equal(verdicts.filter(([, linearizable]) => linearizable).length, 16);
  let totalMs = 0;
  for (const [file, linearizable] of verdicts) {
    await t.step(file, () => {
      const events = parseJepsenEtcdLog(Deno.readTextFileSync(`${HISTORIES_DIR}${file}`));
      const result = checkEvents(registerModel, events, { timeoutMs: 10_000 });
      totalMs += result.elapsedMs;
      assert.equal(result.verdict, linearizable ? "linearizable" : "not-linearizable");
      assert.ok(
        result.elapsedMs < PER_HISTORY_MS_MAX,
        `${file} took ${result.elapsedMs.toFixed(0)} ms`,
      );
    });
  }
  console.log(`checked ${verdicts.length} Jepsen etcd histories in ${totalMs.toFixed(0)} ms`);
});

Deno.test("Jepsen etcd verdicts hold without the symmetry reduction too", () => {
  // The reduction only skips orders that swap interchangeable operations; the plain search must
  // agree with it (and with the reference) on every history.
  const { operationKey: _, ...plainModel } = registerModel;
  for (const [file, linearizable] of readVerdicts()) {
    const events = parseJepsenEtcdLog(Deno.readTextFileSync(`${HISTORIES_DIR}${file}`));
    const result = checkEvents(plainModel, events, { timeoutMs: 10_000 });
    assert.equal(result.verdict, linearizable ? "linearizable" : "not-linearizable", file);
  }
});

Deno.test("the Jepsen parser reads reads, writes, cas outcomes and timeouts", () => {
  const log = [
    "INFO  jepsen.util - 0\t:invoke\t:read\tnil",
    "INFO  jepsen.util - 1\t:invoke\t:cas\t[3 0]",
    "INFO  jepsen.util - 2\t:invoke\t:write\t4",
    "INFO  jepsen.core - some other logger line",
    "INFO  jepsen.util - 0\t:ok\t:read\tnil",
    "INFO  jepsen.util - 1\t:fail\t:cas\t[3 0]",
    "INFO  jepsen.util - 2\t:info\t:write\t:timed-out",
    "INFO  jepsen.util - 0\t:invoke\t:read\tnil",
    "INFO  jepsen.util - 0\t:fail\t:read\t:timed-out",
    "",
  ].join("\n");
  const events = parseJepsenEtcdLog(log);
  assert.deepEqual(events, [
    { process: 0, type: "invoke", f: "read", value: null },
    { process: 1, type: "invoke", f: "cas", value: [3, 0] },
    { process: 2, type: "invoke", f: "write", value: 4 },
    { process: 0, type: "ok", f: "read", value: null },
    { process: 1, type: "fail", f: "cas", value: [3, 0] },
    { process: 2, type: "info", f: "write", value: undefined },
    { process: 0, type: "invoke", f: "read", value: null },
    { process: 0, type: "info", f: "read", value: undefined },
  ]);
  const ops = eventsToOperations(events);
  assert.deepEqual(ops.map((op) => [op.id, op.callTime, op.returnTime]), [
    [0, 0, 3],
    [1, 1, 4],
    [2, 2, Infinity],
    [3, 6, Infinity],
  ]);
  assert.equal(ops[2].output, UNKNOWN);
});

Deno.test("the Jepsen parser names the line of a value it cannot read", () => {
  assert.throws(
    () => parseJepsenEtcdLog("INFO  jepsen.util - 0\t:invoke\t:write\t{:a 1}\n"),
    /line 1: unsupported value/,
  );
});
