import assert from "node:assert/strict";
import { LdbError } from "./errors.ts";
import { DEFAULT_SNAPSHOT_MS, openLdb, SNAPSHOT_MAX_MS } from "./reader.ts";
import { openWriterDatabase } from "./sqlite.ts";
import { createTestLdb, type TestTable } from "./testing.ts";

const FLAGS: TestTable = {
  family: "fam",
  table: "flags",
  fields: [["team", "string"], ["id", "integer"], ["val", "text"], ["blob", "binary"]],
  keyFields: ["team", "id"],
  rows: [
    { team: "b", id: 2, val: "b2", blob: null },
    { team: "a", id: 10, val: "a10", blob: "AAEC" },
    { team: "a", id: 1, val: "a1", blob: null },
    { team: "a", id: "9007199254740993", val: "big", blob: null },
    { team: "c", id: 1, val: "c1", blob: null },
  ],
};

const BYTES: TestTable = {
  family: "fam",
  table: "bykey",
  fields: [["k", "bytestring"], ["v", "decimal"]],
  keyFields: ["k"],
  rows: [{ k: btoa("hello"), v: 1.5 }],
};

Deno.test("getRowByKey returns the row, undefined when absent, and big integers exactly", () => {
  using ldb = createTestLdb([FLAGS, BYTES]);
  assert.deepEqual({ ...ldb.reader.getRowByKey("fam", "flags", "a", 10) }, {
    team: "a",
    id: 10,
    val: "a10",
    blob: new Uint8Array([0, 1, 2]),
  });
  assert.equal(ldb.reader.getRowByKey("fam", "flags", "a", 3), undefined);
  const big = ldb.reader.getRowByKey("fam", "flags", "a", 9007199254740993n);
  assert.equal(big?.id, 9007199254740993n);
  assert.equal(ldb.reader.getRowByKey("fam", "flags", "a", "9007199254740993")?.val, "big");
});

Deno.test("a string key for a bytestring column is looked up as its UTF-8 bytes", () => {
  using ldb = createTestLdb([BYTES]);
  assert.equal(ldb.reader.getRowByKey("fam", "bykey", "hello")?.v, 1.5);
  assert.equal(ldb.reader.getRowByKey("fam", "bykey", new TextEncoder().encode("hello"))?.v, 1.5);
  assert.equal(ldb.reader.getRowByKey("fam", "bykey", "nope"), undefined);
});

Deno.test("a missing table, a partial key or a wrong key type is a typed error", () => {
  using ldb = createTestLdb([FLAGS]);
  const code = (c: string) => (e: unknown) => e instanceof LdbError && e.code === c;
  assert.throws(() => ldb.reader.getRowByKey("fam", "nope", 1), code("table_not_found"));
  assert.throws(() => ldb.reader.getRowByKey("fam", "flags", "a"), code("bad_key"));
  assert.throws(() => ldb.reader.getRowByKey("fam", "flags", "a", 1.5), code("bad_key"));
  assert.throws(() => ldb.reader.getRowByKey("fam", "flags", 1, 1), code("bad_key"));
});

Deno.test("getRowsByKeyPrefix is ordered by key, limited, and resumes after a cursor", () => {
  using ldb = createTestLdb([FLAGS]);
  const ids = (rows: Record<string, unknown>[]) => rows.map((r) => `${r.team}${r.id}`);
  const all = ldb.reader.getRowsByKeyPrefix("fam", "flags", [], { limit: 100 });
  assert.deepEqual(ids(all.rows), ["a1", "a10", "a9007199254740993", "b2", "c1"]);
  assert.equal(all.next, undefined);

  const page1 = ldb.reader.getRowsByKeyPrefix("fam", "flags", ["a"], { limit: 2 });
  assert.deepEqual(ids(page1.rows), ["a1", "a10"]);
  assert.deepEqual(page1.next, ["a", 10]);
  const page2 = ldb.reader.getRowsByKeyPrefix("fam", "flags", ["a"], {
    limit: 2,
    after: page1.next,
  });
  assert.deepEqual(ids(page2.rows), ["a9007199254740993"]);
  assert.equal(page2.next, undefined);

  const full = ldb.reader.getRowsByKeyPrefix("fam", "flags", ["b", 2], { limit: 5 });
  assert.deepEqual(ids(full.rows), ["b2"]);
  assert.throws(() => ldb.reader.getRowsByKeyPrefix("fam", "flags", [], { limit: 0 }), RangeError);
});

Deno.test("lastSeq, ledger latency and waitForSeq follow the writer", async () => {
  using ldb = createTestLdb([FLAGS]);
  assert.equal(ldb.reader.lastSeq(), 1);
  ldb.write([{ op: "clear_table", family: "fam", table: "flags" }], Date.now() - 1500);
  assert.equal(ldb.reader.lastSeq(), 2);
  const latency = ldb.reader.ledgerLatencyMs()!;
  assert.ok(latency >= 1500 && latency < 5000, `latency ${latency}`);

  const waited = ldb.reader.waitForSeq(3, 2000);
  setTimeout(() => ldb.upsert("fam", "flags", [{ team: "z", id: 1, val: null, blob: null }]), 20);
  assert.equal(await waited, 3);
  assert.equal(ldb.reader.getRowByKey("fam", "flags", "z", 1)?.team, "z");
  await assert.rejects(
    ldb.reader.waitForSeq(9, 30),
    (e) => e instanceof LdbError && e.code === "seq_timeout",
  );
});

Deno.test("the reader sees a table dropped and recreated with another key", () => {
  using ldb = createTestLdb([FLAGS]);
  assert.ok(ldb.reader.getRowByKey("fam", "flags", "a", 1));
  ldb.write([
    { op: "drop_table", family: "fam", table: "flags" },
    {
      op: "create_table",
      family: "fam",
      table: "flags",
      fields: [["id", "integer"], ["team", "string"]],
      keyFields: ["id"],
    },
    { op: "upsert", family: "fam", table: "flags", values: { id: 7, team: "q" } },
  ]);
  assert.deepEqual({ ...ldb.reader.getRowByKey("fam", "flags", 7) }, { id: 7, team: "q" });
});

Deno.test("openLdb on a missing file is ldb_unavailable; a reader cannot write", () => {
  assert.throws(
    () => openLdb("/nonexistent/dir/ldb.db"),
    (e) => e instanceof LdbError && e.code === "ldb_unavailable",
  );
  using ldb = createTestLdb([FLAGS]);
  const reader = openLdb(ldb.path);
  assert.equal(reader.ping(), true);
  reader.close();
  assert.equal(reader.ping(), false);
});

Deno.test("with snapshotMs, reads share one snapshot for that long, then see later commits", async () => {
  using ldb = createTestLdb([FLAGS]);
  using shared = openLdb(ldb.path, { snapshotMs: 100 });
  using fresh = openLdb(ldb.path, { snapshotMs: 0 });
  const began = performance.now();
  assert.equal(shared.getRowByKey("fam", "flags", "a", 1)?.val, "a1");
  assert.equal(fresh.getRowByKey("fam", "flags", "a", 1)?.val, "a1");
  const seq = ldb.upsert("fam", "flags", [{ team: "z", id: 1, val: "z1", blob: null }]);
  assert.equal(fresh.getRowByKey("fam", "flags", "z", 1)?.val, "z1", "snapshotMs 0: fresh");
  const stale = shared.getRowByKey("fam", "flags", "z", 1);
  const staleSeq = shared.lastSeq();
  if (performance.now() - began < 90) {
    assert.equal(stale, undefined, "a commit after the snapshot began is not seen in it");
    assert.equal(staleSeq, seq - 1, "seq and rows come from one snapshot");
  }
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(shared.getRowByKey("fam", "flags", "z", 1)?.val, "z1");
  assert.equal(shared.lastSeq(), seq);
});

Deno.test("by default reads share a snapshot for about a millisecond; refresh() ends it", async () => {
  using ldb = createTestLdb([FLAGS]);
  using reader = openLdb(ldb.path);
  const staleFor = async (team: string): Promise<number> => {
    const began = performance.now();
    while (reader.getRowByKey("fam", "flags", team, 1) === undefined) {
      await new Promise((r) => setTimeout(r, 0));
    }
    return performance.now() - began;
  };
  // Written by another connection while the reader's snapshot is open: seen once it ends.
  assert.ok(reader.getRowByKey("fam", "flags", "a", 1));
  ldb.upsert("fam", "flags", [{ team: "x", id: 1, val: "x1", blob: null }]);
  const waitedMs = await staleFor("x");
  assert.ok(waitedMs < DEFAULT_SNAPSHOT_MS + 50, `stale for ${waitedMs} ms`);
  // Within the millisecond the snapshot holds; refresh() lets the next read see the write.
  reader.refresh();
  const began = performance.now();
  assert.ok(reader.getRowByKey("fam", "flags", "x", 1));
  const seq = ldb.upsert("fam", "flags", [{ team: "v", id: 1, val: "v1", blob: null }]);
  const inSnapshot = reader.lastSeq();
  if (performance.now() - began < 0.9) { // the documented default: 1 ms
    assert.equal(inSnapshot, seq - 1, "a commit after the shared snapshot began is not seen in it");
  }
  reader.refresh();
  assert.equal(reader.getRowByKey("fam", "flags", "v", 1)?.val, "v1");
  assert.equal(reader.lastSeq(), seq);
});

Deno.test("with snapshotMs, waitForSeq ends the snapshot: read-your-writes still holds", async () => {
  using ldb = createTestLdb([FLAGS]);
  using shared = openLdb(ldb.path, { snapshotMs: 100 });
  assert.equal(shared.lastSeq(), 1);
  const seq = ldb.upsert("fam", "flags", [{ team: "y", id: 1, val: "y1", blob: null }]);
  assert.equal(await shared.waitForSeq(seq, 50), seq);
  assert.equal(shared.getRowByKey("fam", "flags", "y", 1)?.val, "y1");
});

Deno.test("with snapshotMs, a table created after the snapshot began is found", () => {
  using ldb = createTestLdb([FLAGS]);
  using shared = openLdb(ldb.path, { snapshotMs: 100 });
  assert.ok(shared.getRowByKey("fam", "flags", "a", 1));
  ldb.write([
    {
      op: "create_table",
      family: "fam",
      table: "later",
      fields: [["k", "string"]],
      keyFields: ["k"],
    },
    { op: "upsert", family: "fam", table: "later", values: { k: "x" } },
  ]);
  assert.deepEqual({ ...shared.getRowByKey("fam", "later", "x") }, { k: "x" });
  assert.throws(
    () => shared.getRowByKey("fam", "never", "x"),
    (e) => e instanceof LdbError && e.code === "table_not_found",
  );
});

Deno.test("a reader whose reads stopped releases its snapshot, so the WAL can be truncated", async () => {
  using ldb = createTestLdb([FLAGS]);
  using shared = openLdb(ldb.path, { snapshotMs: 30 });
  const checkpointer = openWriterDatabase(ldb.path);
  try {
    checkpointer.exec("PRAGMA busy_timeout = 20");
    const truncate = () =>
      checkpointer.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number };
    assert.ok(shared.getRowByKey("fam", "flags", "a", 1));
    ldb.upsert("fam", "flags", [{ team: "w", id: 1, val: "w1", blob: null }]);
    // The snapshot is open (no timer can run inside this synchronous stretch): it pins the WAL.
    assert.equal(truncate().busy, 1, "an open snapshot holds up the truncate");
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(truncate().busy, 0, "the idle reader's snapshot ended by its timer");
    assert.equal(Deno.statSync(`${ldb.path}-wal`).size, 0);
    assert.equal(shared.getRowByKey("fam", "flags", "w", 1)?.val, "w1");
  } finally {
    checkpointer.close();
  }
});

Deno.test("openLdb refuses a snapshotMs outside 0..SNAPSHOT_MAX_MS", () => {
  using ldb = createTestLdb([FLAGS]);
  for (const snapshotMs of [-1, SNAPSHOT_MAX_MS + 1, NaN]) {
    assert.throws(() => openLdb(ldb.path, { snapshotMs }), RangeError);
  }
});
