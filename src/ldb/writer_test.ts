import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { LedgerEntry, LedgerOp } from "../ledger/types.ts";
import { formatLdbTimestamp } from "./bookkeeping.ts";
import { LdbError } from "./errors.ts";
import { LdbWriter, type SeqChangedRow } from "./writer.ts";

const CREATE: LedgerOp = {
  op: "create_table",
  family: "fam",
  table: "flags",
  fields: [["name", "string"], ["on", "integer"]],
  keyFields: ["name"],
};

function entry(seq: number, ops: LedgerOp[], ts = 1_700_000_000_000 + seq): LedgerEntry {
  return { seq, ts, family: "fam", ops };
}

function upsert(name: string, on: number, family = "fam"): LedgerOp {
  return { op: "upsert", family, table: "flags", values: { name, on } };
}

function tempLdb(): { path: string; dir: string } {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-ldb-writer-" });
  return { dir, path: join(dir, "nested", "deeper", "ldb.db") };
}

function rows(path: string, sql: string): unknown[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare(sql).all().map((r) => ({ ...r }));
  } finally {
    db.close();
  }
}

Deno.test("open creates parent directories, WAL mode and ctlstore's bookkeeping tables", () => {
  const { dir, path } = tempLdb();
  const writer = LdbWriter.open(path);
  try {
    assert.equal(writer.seq, 0);
    const db = new DatabaseSync(path, { readOnly: true });
    const mode = db.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
    assert.equal(mode.journal_mode, "wal");
    const columns = (table: string) =>
      (db.prepare(`PRAGMA table_info(${table})`).all() as {
        name: string;
        type: string;
        pk: number;
      }[]).map((c) => [c.name, c.type, c.pk]);
    assert.deepEqual(columns("_ldb_seq"), [["id", "INTEGER", 1], ["seq", "BIGINT", 0]]);
    assert.deepEqual(columns("_ldb_last_update"), [
      ["name", "VARCHAR(191)", 1],
      ["timestamp", "DATETIME", 0],
    ]);
    db.close();
  } finally {
    writer.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("applying an entry advances _ldb_seq and stamps the leader time in Go's layout", () => {
  const { dir, path } = tempLdb();
  const writer = LdbWriter.open(path);
  try {
    const ts = Date.UTC(2024, 0, 2, 3, 4, 5, 670);
    writer.applyBatch([entry(1, [CREATE, upsert("a", 1)], ts)]);
    assert.equal(writer.seq, 1);
    // The exact statements a ctlstore reader issues.
    assert.deepEqual(rows(path, "SELECT seq FROM _ldb_seq WHERE id = 1"), [{ seq: 1 }]);
    assert.deepEqual(rows(path, "SELECT timestamp FROM _ldb_last_update WHERE name='ledger'"), [
      { timestamp: "2024-01-02 03:04:05.67+00:00" },
    ]);
    assert.deepEqual(rows(path, "SELECT * FROM fam___flags WHERE name = 'a'"), [
      { name: "a", on: 1 },
    ]);
    assert.deepEqual(rows(path, "SELECT count(*) AS n FROM _ldb_seq"), [{ n: 1 }]);
  } finally {
    writer.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("formatLdbTimestamp drops the fraction when it is zero, as Go's .999 layout does", () => {
  assert.equal(formatLdbTimestamp(Date.UTC(2030, 11, 31, 23, 59, 59)), "2030-12-31 23:59:59+00:00");
  assert.equal(
    formatLdbTimestamp(Date.UTC(2030, 0, 1, 0, 0, 0, 5)),
    "2030-01-01 00:00:00.005+00:00",
  );
});

Deno.test("a replayed entry is skipped, never re-applied; a gap is refused", () => {
  const { dir, path } = tempLdb();
  const writer = LdbWriter.open(path);
  try {
    writer.applyBatch([entry(1, [CREATE]), entry(2, [upsert("a", 1)])]);
    const replay = writer.applyBatch([entry(2, [upsert("a", 99)]), entry(3, [upsert("b", 3)])]);
    assert.deepEqual(replay, { seq: 3, appliedEntries: 1, replayedEntries: 1 });
    assert.deepEqual(rows(path, "SELECT * FROM fam___flags ORDER BY name"), [
      { name: "a", on: 1 },
      { name: "b", on: 3 },
    ]);
    assert.throws(
      () => writer.applyBatch([entry(5, [upsert("c", 5)])]),
      (e) => e instanceof LdbError && e.code === "ldb_gap" && /entries 4\.\.4/.test(e.message),
    );
    assert.equal(writer.seq, 3);
    // Entries before a gap inside a batch still commit.
    assert.throws(
      () => writer.applyBatch([entry(4, [upsert("d", 4)]), entry(6, [upsert("e", 6)])]),
      (e) => e instanceof LdbError && e.code === "ldb_gap",
    );
    assert.equal(writer.seq, 4);
    assert.deepEqual(rows(path, "SELECT seq FROM _ldb_seq WHERE id = 1"), [{ seq: 4 }]);
  } finally {
    writer.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("an entry whose ops fail leaves nothing of itself applied, including _ldb_seq", () => {
  const { dir, path } = tempLdb();
  const writer = LdbWriter.open(path);
  try {
    writer.applyBatch([entry(1, [CREATE], 1000)]);
    const bad = entry(3, [
      upsert("x", 1),
      { op: "upsert", family: "fam", table: "missing", values: { k: 1 } },
    ], 3000);
    assert.throws(
      () => writer.applyBatch([entry(2, [upsert("ok", 2)], 2000), bad]),
      (e) => e instanceof LdbError && e.code === "ldb_apply_failed" && /entry 3/.test(e.message),
    );
    assert.equal(writer.seq, 2);
    assert.deepEqual(rows(path, "SELECT seq FROM _ldb_seq"), [{ seq: 2 }]);
    assert.deepEqual(rows(path, "SELECT name FROM fam___flags"), [{ name: "ok" }]);
    assert.deepEqual(rows(path, "SELECT timestamp FROM _ldb_last_update"), [
      { timestamp: formatLdbTimestamp(2000) },
    ]);
    // A failing DDL inside an entry is rolled back too; the writer keeps working afterwards.
    assert.throws(() =>
      writer.applyBatch([entry(3, [
        {
          op: "create_table",
          family: "fam",
          table: "other",
          fields: [["k", "integer"]],
          keyFields: [
            "k",
          ],
        },
        CREATE,
      ])])
    );
    assert.deepEqual(rows(path, "SELECT name FROM sqlite_master WHERE name = 'fam___other'"), []);
    writer.applyBatch([entry(3, [upsert("y", 3)])]);
    assert.equal(writer.seq, 3);
  } finally {
    writer.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a throwing beforeCommit hook rolls the whole batch back", () => {
  const { dir, path } = tempLdb();
  const writer = LdbWriter.open(path);
  try {
    writer.applyBatch([entry(1, [CREATE])]);
    let seen: readonly SeqChangedRow[] = [];
    assert.throws(
      () =>
        writer.applyBatch([entry(2, [upsert("a", 1)]), entry(3, [upsert("b", 2)])], {
          beforeCommit: (changes) => {
            seen = changes;
            throw new Error("disk full");
          },
        }),
      /disk full/,
    );
    assert.deepEqual(seen.map((c) => c.seq), [2, 3]);
    assert.equal(writer.seq, 1);
    assert.deepEqual(rows(path, "SELECT seq FROM _ldb_seq"), [{ seq: 1 }]);
    assert.deepEqual(rows(path, "SELECT * FROM fam___flags"), []);
  } finally {
    writer.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("--families: ops of other families are skipped while the seq advances", () => {
  const { dir, path } = tempLdb();
  const writer = LdbWriter.open(path, { families: ["fam"] });
  try {
    writer.applyBatch([
      {
        seq: 1,
        ts: 1,
        family: null,
        ops: [CREATE, { ...CREATE, family: "other" } as LedgerOp],
      },
      entry(2, [upsert("a", 1)]),
      { seq: 3, ts: 3, family: "other", ops: [upsert("z", 9, "other")] },
    ]);
    assert.equal(writer.seq, 3);
    assert.deepEqual(rows(path, "SELECT name FROM sqlite_master WHERE name LIKE '%flags'"), [
      { name: "fam___flags" },
    ]);
    assert.deepEqual(rows(path, "SELECT seq FROM _ldb_seq"), [{ seq: 3 }]);
  } finally {
    writer.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("reopening resumes from the stored seq and checkpoints empty the WAL", () => {
  const { dir, path } = tempLdb();
  let writer = LdbWriter.open(path);
  try {
    writer.applyBatch([entry(1, [CREATE]), entry(2, [upsert("a", 1)])]);
    writer.close();
    writer = LdbWriter.open(path);
    assert.equal(writer.seq, 2);
    writer.applyBatch([entry(3, [upsert("b", 1)])]);
    assert.ok(Deno.statSync(`${path}-wal`).size > 0);
    const result = writer.checkpoint("TRUNCATE");
    assert.equal(result.busy, 0);
    assert.equal(Deno.statSync(`${path}-wal`).size, 0);
    assert.equal(writer.checkpoint("PASSIVE").busy, 0);
  } finally {
    writer.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("two writers on one file never apply an entry twice (seq read in the transaction)", () => {
  const { dir, path } = tempLdb();
  const a = LdbWriter.open(path);
  const b = LdbWriter.open(path);
  try {
    a.applyBatch([entry(1, [CREATE]), entry(2, [upsert("x", 1)])]);
    // b still believes the LDB is at 0; the stored seq wins.
    const result = b.applyBatch([
      entry(1, [CREATE]),
      entry(2, [upsert("x", 99)]),
      entry(3, [
        upsert("y", 3),
      ]),
    ]);
    assert.deepEqual(result, { seq: 3, appliedEntries: 1, replayedEntries: 2 });
    assert.deepEqual(rows(path, "SELECT * FROM fam___flags ORDER BY name"), [
      { name: "x", on: 1 },
      { name: "y", on: 3 },
    ]);
  } finally {
    a.close();
    b.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("any split of the ledger into batches, with replays, gives the same LDB", async () => {
  const { syntheticLedger, expectedDump, ldbDump } = await import(
    "../reflector/test_ledger_server.ts"
  );
  const ledger = syntheticLedger(400);
  const expected = expectedDump(ledger);
  for (let trial = 0; trial < 5; trial++) {
    const seed = Math.floor(Math.random() * 2 ** 31);
    let state = seed;
    const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const { dir, path } = tempLdb();
    const writer = LdbWriter.open(path);
    try {
      let next = 0;
      while (next < ledger.length) {
        // Some batches start before the applied seq (replays), sizes 1..40.
        const from = Math.max(0, next - Math.floor(random() * 5));
        const to = Math.min(ledger.length, next + 1 + Math.floor(random() * 40));
        writer.applyBatch(ledger.slice(from, to));
        next = to;
      }
      assert.equal(writer.seq, 400, `seed ${seed}`);
      assert.equal(ldbDump(path), expected, `seed ${seed}`);
    } finally {
      writer.close();
      Deno.removeSync(dir, { recursive: true });
    }
  }
});
