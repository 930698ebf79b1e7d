import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SnapshotError } from "./errors.ts";
import { currentLdbSeq, takeLdbSnapshot } from "./snapshot.ts";
import { openTestLdb, TEST_PHYSICAL_TABLE, writeRows } from "./testing.ts";

function countRows(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const row = db.prepare(`SELECT count(*) AS n FROM ${TEST_PHYSICAL_TABLE}`).get() as {
      n: number;
    };
    return Number(row.n);
  } finally {
    db.close();
  }
}

Deno.test("takeLdbSnapshot copies a live LDB, WAL included, and reports the copy's seq", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-snap-" });
  try {
    const ldb = join(dir, "ldb.db");
    const writer = openTestLdb(ldb);
    writeRows(writer, 0, 50);
    const seq = writeRows(writer, 50, 50);
    // The writer never auto-checkpoints, so these rows live only in the WAL: the copy must see them.
    const snap = await takeLdbSnapshot(ldb, join(dir, "snap.db"));
    assert.equal(snap.seq, seq);
    assert.equal(countRows(snap.path), 100);
    assert.ok(snap.sizeBytes > 0);
    // The copy is self-contained: no WAL, rollback journal mode.
    const copy = new DatabaseSync(snap.path, { readOnly: true });
    const mode = copy.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
    copy.close();
    assert.equal(mode.journal_mode, "delete");
    // The writer keeps going afterwards.
    assert.equal(writeRows(writer, 100, 1), seq + 1);
    writer.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("takeLdbSnapshot neither waits for nor includes an open write transaction", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-snap-" });
  try {
    const ldb = join(dir, "ldb.db");
    const writer = openTestLdb(ldb);
    const seq = writeRows(writer, 0, 10);
    writer.close();
    const other = new DatabaseSync(ldb);
    other.exec("BEGIN IMMEDIATE");
    other.exec("UPDATE _ldb_seq SET seq = 999 WHERE id = 1");
    other.exec(`DELETE FROM ${TEST_PHYSICAL_TABLE}`);
    const t0 = performance.now();
    const snap = await takeLdbSnapshot(ldb, join(dir, "snap.db"));
    const tookMs = performance.now() - t0;
    other.exec("ROLLBACK");
    other.close();
    assert.equal(snap.seq, seq);
    assert.equal(countRows(snap.path), 10);
    assert.ok(tookMs < 2_000, `snapshot waited ${tookMs} ms on the writer's lock`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("takeLdbSnapshot refuses a missing LDB, a non-LDB and an existing output", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-snap-" });
  try {
    await assert.rejects(
      takeLdbSnapshot(join(dir, "missing.db"), join(dir, "out.db")),
      (e) => e instanceof SnapshotError && e.code === "ldb_unavailable",
    );
    const plain = join(dir, "plain.db");
    const db = new DatabaseSync(plain);
    db.exec("CREATE TABLE t (x)");
    db.close();
    await assert.rejects(
      takeLdbSnapshot(plain, join(dir, "out.db")),
      (e) => e instanceof SnapshotError && e.code === "ldb_unavailable",
    );
    await assert.rejects(currentLdbSeq(plain), (e) => e instanceof SnapshotError);

    const ldb = join(dir, "ldb.db");
    openTestLdb(ldb).close();
    Deno.writeTextFileSync(join(dir, "taken.db"), "keep me");
    await assert.rejects(
      takeLdbSnapshot(ldb, join(dir, "taken.db")),
      (e) => e instanceof SnapshotError && e.code === "snapshot_exists",
    );
    assert.equal(Deno.readTextFileSync(join(dir, "taken.db")), "keep me");
    assert.equal(await currentLdbSeq(ldb), 1);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
