import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { LedgerSourceError } from "./ledger_source.ts";
import { Reflector, type ReflectorOptions } from "./reflector.ts";
import { expectedDump, ldbDump, syntheticLedger, TestLedgerServer } from "./test_ledger_server.ts";

const FAST = { backoffMinMs: 10, backoffMaxMs: 50, idleTimeoutMs: 2_000 };

function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "ctl-reflector-" });
}

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function start(options: ReflectorOptions): { reflector: Reflector; done: Promise<void> } {
  const reflector = new Reflector({ ...FAST, ...options });
  return { reflector, done: reflector.run() };
}

function seqOf(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return (db.prepare("SELECT seq FROM _ldb_seq WHERE id = 1").get() as { seq: number }).seq;
  } finally {
    db.close();
  }
}

Deno.test("the reflector follows the stream into the LDB and reports staleness", async () => {
  const dir = tempDir();
  const ledger = syntheticLedger(300);
  const server = new TestLedgerServer({ heartbeatMs: 50 });
  server.append(...ledger.slice(0, 200));
  const ldbPath = join(dir, "ldb.db");
  const { reflector, done } = start({ ldbPath, executives: [server.url] });
  try {
    await until("seq 200", () => reflector.appliedSeq === 200);
    assert.equal(ldbDump(ldbPath), expectedDump(ledger.slice(0, 200)));
    server.append(...ledger.slice(200));
    await until("seq 300", () => reflector.appliedSeq === 300);
    assert.equal(ldbDump(ldbPath), expectedDump(ledger));
    await until("heartbeat", () => reflector.status().clusterSeq === 300);
    const status = reflector.status(ledger[299].ts + 1234);
    assert.equal(status.lagEntries, 0);
    assert.equal(status.ledgerLatencyMs, 1234);
    assert.equal(status.connected, true);
    assert.equal(status.executive, server.url);
    assert.deepEqual(server.requests, [{ route: "stream", after: 0 }]);
  } finally {
    await reflector.stop();
    await done;
    await server.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("when the first executive dies mid-stream the reflector fails over to the next", async () => {
  const dir = tempDir();
  const ledger = syntheticLedger(400);
  const first = new TestLedgerServer({ paceEntries: 10, paceMs: 5 });
  const second = new TestLedgerServer();
  first.append(...ledger);
  second.append(...ledger);
  const ldbPath = join(dir, "ldb.db");
  const { reflector, done } = start({ ldbPath, executives: [first.url, second.url] });
  try {
    await until("some entries", () => reflector.appliedSeq >= 50);
    await first.close();
    await until("seq 400", () => reflector.appliedSeq === 400);
    // The second executive was asked for the rest, after what the first had delivered.
    assert.equal(second.requests[0].route, "stream");
    assert.ok(second.requests[0].after >= 50 && second.requests[0].after < 400);
    assert.equal(ldbDump(ldbPath), expectedDump(ledger));
    assert.ok(reflector.status().reconnects >= 1);
  } finally {
    await reflector.stop();
    await done;
    await second.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a broken stream is resumed after the last applied seq", async () => {
  const dir = tempDir();
  const ledger = syntheticLedger(200);
  const server = new TestLedgerServer({ paceEntries: 5, paceMs: 5 });
  server.append(...ledger);
  const ldbPath = join(dir, "ldb.db");
  const { reflector, done } = start({ ldbPath, executives: [server.url] });
  try {
    await until("some entries", () => reflector.appliedSeq >= 20);
    server.breakStreams();
    await until("seq 200", () => reflector.appliedSeq === 200);
    assert.ok(server.requests.length >= 2);
    assert.ok(server.requests[1].after >= 20);
    assert.equal(ldbDump(ldbPath), expectedDump(ledger));
  } finally {
    await reflector.stop();
    await done;
    await server.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("without the stream route the reflector long-polls", async () => {
  const dir = tempDir();
  const ledger = syntheticLedger(150);
  const server = new TestLedgerServer({ noStream: true });
  server.append(...ledger.slice(0, 100));
  const ldbPath = join(dir, "ldb.db");
  const { reflector, done } = start({ ldbPath, executives: [server.url] });
  try {
    await until("seq 100", () => reflector.appliedSeq === 100);
    const polls = server.requests.filter((r) => r.route === "poll").length;
    server.append(...ledger.slice(100));
    await until("seq 150", () => reflector.appliedSeq === 150);
    // Woken by the append, not by a timer: one more long poll, not a stream of polls.
    assert.ok(server.requests.filter((r) => r.route === "poll").length <= polls + 2);
    assert.equal(ldbDump(ldbPath), expectedDump(ledger));
    assert.equal(reflector.status().clusterSeq, 150);
  } finally {
    await reflector.stop();
    await done;
    await server.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a restarted reflector resumes from _ldb_seq; the changelog holds each row once", async () => {
  const dir = tempDir();
  const ledger = syntheticLedger(120);
  const server = new TestLedgerServer();
  server.append(...ledger.slice(0, 60));
  const ldbPath = join(dir, "ldb.db");
  const changelog = { path: join(dir, "changes.log"), rotateBytes: 2_000, filesMax: 100 };
  let run = start({ ldbPath, executives: [server.url], changelog, families: ["fam"] });
  try {
    await until("seq 60", () => run.reflector.appliedSeq === 60);
    await run.reflector.stop();
    await run.done;
    assert.equal(seqOf(ldbPath), 60);
    server.append(...ledger.slice(60));
    run = start({ ldbPath, executives: [server.url], changelog, families: ["fam"] });
    await until("seq 120", () => run.reflector.appliedSeq === 120);
    assert.deepEqual(server.requests.map((r) => r.after), [0, 60]);
    assert.equal(ldbDump(ldbPath), expectedDump(ledger, ["fam"]));
    const files = [...Deno.readDirSync(dir)].map((e) => e.name)
      .filter((n) => n.startsWith("changes.log"))
      .sort((a, b) => (Number(b.split(".")[2] ?? 0) || 0) - (Number(a.split(".")[2] ?? 0) || 0));
    assert.ok(files.length > 2, "rotated");
    const seqs = files.flatMap((f) =>
      Deno.readTextFileSync(join(dir, f)).split("\n").filter((l) => l).map((l) =>
        JSON.parse(l) as { seq: number; family: string }
      )
    );
    // Only family "fam" rows, in seq order; one line per changed row of each fam entry.
    const expected = ledger.flatMap((e) =>
      e.ops.filter((op) => op.family === "fam" && (op.op === "upsert" || op.op === "delete"))
        .map(() => e.seq)
    );
    assert.deepEqual(seqs.map((l) => l.seq), expected);
    assert.ok(seqs.every((l) => l.family === "fam"));
  } finally {
    await run.reflector.stop();
    await run.done;
    await server.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a 410 (seq older than the ledger retention) stops the reflector with ledger_gone", async () => {
  const dir = tempDir();
  const server = new TestLedgerServer({ retainedAfter: 10 });
  const { reflector, done } = start({ ldbPath: join(dir, "ldb.db"), executives: [server.url] });
  try {
    await assert.rejects(
      done,
      (e) =>
        e instanceof LedgerSourceError && e.code === "ledger_gone" && /snapshot/.test(e.message),
    );
    assert.match(reflector.status().lastError ?? "", /410/);
  } finally {
    await reflector.stop();
    await server.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("an executive that goes silent (no entries, no heartbeat) is left for the next", async () => {
  const dir = tempDir();
  const ledger = syntheticLedger(50);
  // Accepts the stream and then never writes a byte.
  const silent = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(new ReadableStream({ start() {} })),
  );
  const good = new TestLedgerServer();
  good.append(...ledger);
  const { reflector, done } = start({
    ldbPath: join(dir, "ldb.db"),
    executives: [`http://127.0.0.1:${silent.addr.port}`, good.url],
    idleTimeoutMs: 150,
  });
  try {
    await until("seq 50", () => reflector.appliedSeq === 50);
    assert.match(reflector.status().lastError ?? "", /sent nothing for 150 ms/);
  } finally {
    await reflector.stop();
    await done;
    await good.close();
    await silent.shutdown();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a stream kept alive by heartbeats outlives the idle timeout", async () => {
  const dir = tempDir();
  const server = new TestLedgerServer({ heartbeatMs: 25 });
  server.append(...syntheticLedger(5));
  const { reflector, done } = start({
    ldbPath: join(dir, "ldb.db"),
    executives: [server.url],
    idleTimeoutMs: 300,
  });
  try {
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(reflector.appliedSeq, 5);
    assert.equal(reflector.status().reconnects, 0);
    assert.equal(server.requests.length, 1);
    server.append(...syntheticLedger(8).slice(5));
    await until("seq 8", () => reflector.appliedSeq === 8);
  } finally {
    await reflector.stop();
    await done;
    await server.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("an entry that cannot apply stops the LDB before it and is reported, not skipped", async () => {
  const dir = tempDir();
  const ledger = syntheticLedger(10);
  ledger[5] = {
    ...ledger[5],
    ops: [{ op: "upsert", family: "fam", table: "missing", values: { id: 1 } }],
  };
  const server = new TestLedgerServer();
  server.append(...ledger);
  const ldbPath = join(dir, "ldb.db");
  const { reflector, done } = start({ ldbPath, executives: [server.url] });
  try {
    await until("the error", () => /entry 6/.test(reflector.status().lastError ?? ""));
    assert.equal(reflector.appliedSeq, 5);
    assert.equal(seqOf(ldbPath), 5);
    assert.equal(ldbDump(ldbPath), expectedDump(ledger.slice(0, 5)));
  } finally {
    await reflector.stop();
    await done;
    await server.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
