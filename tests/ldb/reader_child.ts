/**
 * A reader process for the concurrent-readers test: reads the LDB through the reader library
 * while another process writes it, and reports what it saw as one JSON line.
 *
 * Usage: deno run -A tests/ldb/reader_child.ts LDB_PATH FINAL_SEQ
 */
import { DatabaseSync } from "node:sqlite";
import { openLdb } from "../../mod.ts";

const [path, finalSeqText] = Deno.args;
const finalSeq = Number(finalSeqText);
const reader = openLdb(path);
// One statement is one snapshot: the counter row must always equal the seq beside it.
const snapshot = new DatabaseSync(path, { readOnly: true });
const both = snapshot.prepare(
  "SELECT (SELECT seq FROM _ldb_seq WHERE id = 1) AS seq, v FROM fam___counter WHERE id = 1",
);
let reads = 0;
let mismatches = 0;
let regressions = 0;
let lastSeq = 0;
const seen = new Set<number>();
console.log("ready");
const waiting = reader.waitForSeq(finalSeq, 30_000);
let done = false;
waiting.then(() => done = true);
while (!done) {
  for (let i = 0; i < 200; i++) {
    const seq = reader.lastSeq();
    if (seq < lastSeq) regressions++;
    lastSeq = seq;
    seen.add(seq);
    const row = reader.getRowByKey("fam", "counter", 1);
    if (row && (row.v as number) < 1) mismatches++;
    const snap = both.get() as { seq: number; v: number } | undefined;
    if (snap && snap.v !== snap.seq) mismatches++;
    reads += 3;
  }
  await new Promise((r) => setTimeout(r, 0));
}
const final = reader.getRowByKey("fam", "counter", 1);
const report = {
  reads,
  mismatches,
  regressions,
  distinctSeqs: seen.size,
  finalV: final?.v,
  seq: await waiting,
};
console.log(JSON.stringify(report));
reader.close();
snapshot.close();
