import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { WalCheckpointer } from "./wal_checkpointer.ts";

function walDatabase(): { dir: string; path: string; db: DatabaseSync } {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-checkpointer-test-" });
  const path = `${dir}/db.sqlite`;
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA wal_autocheckpoint = 0");
  db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)");
  return { dir, path, db };
}

function writeRows(db: DatabaseSync, from: number, n: number): void {
  const insert = db.prepare("INSERT INTO t (k, v) VALUES (?, ?)");
  db.exec("BEGIN");
  for (let i = from; i < from + n; i++) insert.run(i, "x".repeat(500));
  db.exec("COMMIT");
}

Deno.test("the worker copies the WAL into the database file while the owner keeps writing", async () => {
  const { dir, path, db } = walDatabase();
  const failures: string[] = [];
  const cp = new WalCheckpointer(path, (m) => failures.push(m), 0);
  try {
    writeRows(db, 0, 2_000); // ~1 MB: hundreds of WAL frames, none in the database file yet
    const before = Deno.statSync(path).size;
    const report = cp.nextReport();
    cp.poke();
    const { log, checkpointed } = await report;
    assert.ok(log > 200, `WAL frames: ${log}`);
    assert.equal(checkpointed, log, "a PASSIVE checkpoint with no reader copies every frame");
    assert.ok(Deno.statSync(path).size > before + 900_000, "the rows are in the database file");
    // The owner writes on meanwhile; the data stays whole.
    writeRows(db, 2_000, 100);
    const again = cp.nextReport();
    cp.poke();
    await again;
    assert.equal((db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n, 2_100);
    assert.deepEqual(failures, []);
  } finally {
    cp.close();
    db.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("pokes are coalesced: a burst gives one checkpoint that covers every write", async () => {
  const { dir, path, db } = walDatabase();
  const cp = new WalCheckpointer(path, () => {}, 50);
  try {
    writeRows(db, 0, 500);
    const first = cp.nextReport();
    for (let i = 0; i < 10; i++) cp.poke();
    const a = await first;
    assert.equal(a.checkpointed, a.log);
    writeRows(db, 500, 500);
    const second = cp.nextReport();
    // Within the minimum interval: remembered, and run once the interval has passed.
    for (let i = 0; i < 10; i++) cp.poke();
    const b = await second;
    assert.equal(b.checkpointed, b.log);
    assert.ok(b.log > 0);
  } finally {
    cp.close();
    db.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("close() returns with the worker's connection closed: the file can be replaced", () => {
  const { dir, path, db } = walDatabase();
  const failures: string[] = [];
  const cp = new WalCheckpointer(path, (m) => failures.push(m));
  writeRows(db, 0, 100);
  cp.poke();
  const t0 = performance.now();
  cp.close();
  assert.ok(performance.now() - t0 < 5_000);
  cp.poke(); // a no-op once closed
  db.close();
  // With every connection closed SQLite has folded the WAL back: the file alone holds the rows.
  assert.throws(() => Deno.statSync(`${path}-wal`), Deno.errors.NotFound);
  const reopened = new DatabaseSync(path);
  assert.equal((reopened.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n, 100);
  reopened.close();
  assert.deepEqual(failures, []);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("a database that cannot be opened is reported, not thrown", async () => {
  let reported!: (m: string) => void;
  const failure = new Promise<string>((resolve) => (reported = resolve));
  const cp = new WalCheckpointer("/nonexistent-dir/for/ctl/db.sqlite", (m) => reported(m));
  cp.poke();
  try {
    assert.match(await failure, /cannot open/);
  } finally {
    cp.close();
  }
});
