import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { copyDatabase, execInWorker, sqlString } from "./sqlite_worker.ts";

Deno.test("execInWorker runs statements in order on another thread's connection", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-sqlite-worker-" });
  try {
    const path = `${dir}/a.db`;
    await execInWorker(path, [
      "CREATE TABLE t (k TEXT PRIMARY KEY)",
      `INSERT INTO t VALUES (${sqlString("it's")})`,
      `VACUUM INTO ${sqlString(`${dir}/copy's.db`)}`,
    ]);
    const copy = new DatabaseSync(`${dir}/copy's.db`, { readOnly: true });
    assert.deepEqual(copy.prepare("SELECT k FROM t").all().map((r) => r.k), ["it's"]);
    copy.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("execInWorker rejects with SQLite's error, and read-only means read-only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-sqlite-worker-" });
  try {
    const path = `${dir}/a.db`;
    await assert.rejects(
      execInWorker(path, ["CREATE TABLE t (k)", "INSERT INTO nope VALUES (1)", "DROP TABLE t"]),
      /no such table: nope/,
    );
    // The statement after the failing one did not run.
    const db = new DatabaseSync(path, { readOnly: true });
    assert.equal(
      db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 't'").get()?.n,
      1,
    );
    db.close();
    await assert.rejects(
      execInWorker(path, ["INSERT INTO t VALUES (1)"], { readOnly: true }),
      /readonly/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("copyDatabase hands back a consistent copy's bytes and what was read from it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-sqlite-worker-" });
  try {
    const path = `${dir}/a.db`;
    await execInWorker(path, ["CREATE TABLE t (k)", "INSERT INTO t VALUES (42)"]);
    const { data, inspected } = await copyDatabase(
      path,
      (copy) => copy.prepare("SELECT k FROM t").get()?.k,
    );
    assert.equal(inspected, 42);
    assert.equal(new TextDecoder().decode(data.subarray(0, 15)), "SQLite format 3");
    await Deno.writeFile(`${dir}/back.db`, data);
    const back = new DatabaseSync(`${dir}/back.db`, { readOnly: true });
    assert.equal(back.prepare("SELECT k FROM t").get()?.k, 42);
    back.close();
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["a.db", "back.db"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
