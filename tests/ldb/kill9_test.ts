/**
 * `kill -9` of a reflector at random instants while it follows a stream: after every kill the
 * LDB holds exactly the entries up to its `_ldb_seq` (nothing torn, nothing applied twice), the
 * next run asks the ledger for exactly the entries after that seq, and in the end the LDB and
 * the changelog equal what one uninterrupted run produces.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { LedgerEntry } from "../../src/ledger/types.ts";
import {
  expectedDump,
  ldbDump,
  syntheticLedger,
  TestLedgerServer,
} from "../../src/reflector/test_ledger_server.ts";

const CHILD = new URL("./reflector_child.ts", import.meta.url).pathname;
const ENTRIES = 3_000;
const KILLS = 8;

function appliedSeq(path: string): number {
  try {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const row = db.prepare("SELECT seq FROM _ldb_seq WHERE id = 1").get() as
        | { seq: number }
        | undefined;
      return row?.seq ?? 0;
    } finally {
      db.close();
    }
  } catch {
    return 0; // killed before the LDB was created
  }
}

/** Every changelog line's seq, oldest file first. */
function changelogSeqs(dir: string): number[] {
  const files = [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => n.startsWith("changes.log"))
    .map((n) => ({ n, rank: n === "changes.log" ? 0 : Number(n.split(".").pop()) }))
    .sort((a, b) => b.rank - a.rank);
  return files.flatMap(({ n }) =>
    Deno.readTextFileSync(join(dir, n)).split("\n").filter((l) => l.trim())
      .map((l) => (JSON.parse(l) as { seq: number }).seq)
  );
}

function expectedChangelogSeqs(entries: readonly LedgerEntry[]): number[] {
  return entries.flatMap((e) =>
    e.ops.filter((op) => op.op === "upsert" || op.op === "delete").map(() => e.seq)
  );
}

function spawnReflector(ldbPath: string, url: string, changelog: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, ldbPath, url, changelog],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

async function started(child: Deno.ChildProcess): Promise<void> {
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /started/);
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
}

Deno.test("kill -9 at random instants: every entry applied exactly once, in order", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-kill9-" });
  const ldbPath = join(dir, "ldb.db");
  const changelog = join(dir, "changes.log");
  const ledger = syntheticLedger(ENTRIES);
  // Paced, so the stream lasts longer than the time between kills.
  const server = new TestLedgerServer({ paceEntries: 4, paceMs: 2, heartbeatMs: 100 });
  server.append(...ledger);
  // A fixed seed would hide timing bugs; print the delays so a failure can be retraced.
  const delaysMs = Array.from({ length: KILLS }, () => 20 + Math.floor(Math.random() * 250));
  console.log(`kill delays after start (ms): ${delaysMs.join(", ")}`);
  const seqsAtKill: number[] = [];
  let uncommittedLines = 0;
  try {
    let previous = 0;
    for (const delayMs of delaysMs) {
      const requestsBefore = server.requests.length;
      const child = spawnReflector(ldbPath, server.url, changelog);
      await started(child);
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill("SIGKILL");
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL");

      const seq = appliedSeq(ldbPath);
      seqsAtKill.push(seq);
      assert.ok(seq >= previous, `the seq never goes back (${previous} → ${seq})`);
      // The LDB holds exactly entries 1..seq: nothing of a half-applied entry.
      if (seq > 0) assert.equal(ldbDump(ldbPath), expectedDump(ledger.slice(0, seq)));
      // The run asked for exactly the entries after the seq it found at start.
      const asked = server.requests.slice(requestsBefore);
      if (asked.length > 0) assert.equal(asked[0].after, previous);
      // Changelog lines of committed entries are all there, once; lines past the seq are
      // only those of the batch that was being committed (cut at the next start).
      const logged = changelogSeqs(dir);
      const committed = logged.filter((s) => s <= seq);
      uncommittedLines += logged.length - committed.length;
      assert.deepEqual(committed, expectedChangelogSeqs(ledger.slice(0, seq)));
      previous = seq;
    }
    assert.ok(seqsAtKill.some((s) => s > 0 && s < ENTRIES), `killed mid-stream: ${seqsAtKill}`);

    const child = spawnReflector(ldbPath, server.url, changelog);
    await started(child);
    const deadline = Date.now() + 20_000;
    while (appliedSeq(ldbPath) < ENTRIES) {
      assert.ok(Date.now() < deadline, "the last run catches up");
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGKILL");
    await child.status;
    assert.equal(ldbDump(ldbPath), expectedDump(ledger));
    assert.deepEqual(changelogSeqs(dir), expectedChangelogSeqs(ledger));
    console.log(`seq at each kill: ${seqsAtKill.join(", ")}`);
    console.log(`changelog lines of uncommitted batches cut on restart: ${uncommittedLines}`);
  } finally {
    await server.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
