/**
 * Readers in other processes read the LDB while the writer writes it (WAL): they never see a
 * torn entry (data and `_ldb_seq` from different entries), never see the seq go back, and the
 * writer is never blocked by them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LdbWriter } from "../../src/ldb/writer.ts";

const CHILD = new URL("./reader_child.ts", import.meta.url).pathname;
const ENTRIES = 1_500;

Deno.test("two reader processes read consistently while the writer applies entries", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-ldb-readers-" });
  const path = join(dir, "ldb.db");
  const writer = LdbWriter.open(path);
  try {
    writer.applyBatch([{
      seq: 1,
      ts: Date.now(),
      family: "fam",
      ops: [
        {
          op: "create_table",
          family: "fam",
          table: "counter",
          fields: [["id", "integer"], ["v", "integer"]],
          keyFields: ["id"],
        },
        { op: "upsert", family: "fam", table: "counter", values: { id: 1, v: 1 } },
      ],
    }]);
    const children = [0, 1].map(() =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CHILD, path, String(ENTRIES)],
        stdout: "piped",
        stderr: "inherit",
      }).spawn()
    );
    const outputs = children.map((child) => readLines(child.stdout));
    for (const lines of outputs) assert.equal((await lines.next()).value, "ready");
    const started = performance.now();
    for (let seq = 2; seq <= ENTRIES; seq++) {
      writer.applyBatch([{
        seq,
        ts: Date.now(),
        family: "fam",
        ops: [{ op: "upsert", family: "fam", table: "counter", values: { id: 1, v: seq } }],
      }]);
      if (seq % 50 === 0) {
        writer.checkpoint("PASSIVE");
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    const writeMs = performance.now() - started;
    for (const [i, child] of children.entries()) {
      const report = JSON.parse((await outputs[i].next()).value ?? "null");
      assert.equal((await child.status).code, 0);
      assert.equal(report.mismatches, 0, "no torn reads");
      assert.equal(report.regressions, 0, "the seq never goes back");
      assert.equal(report.seq, ENTRIES);
      assert.equal(report.finalV, ENTRIES);
      assert.ok(report.distinctSeqs > 10, `read while writing (${report.distinctSeqs} seqs seen)`);
    }
    assert.ok(writeMs < 20_000, `writer not blocked (${writeMs.toFixed(0)} ms)`);
  } finally {
    writer.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let cut;
    while ((cut = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, cut);
      pending = pending.slice(cut + 1);
    }
  }
}
