import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { gzipSync } from "node:zlib";
import { parseManifest, snapshotName } from "../supervisor/manifest.ts";
import { publishSnapshot } from "../supervisor/publish.ts";
import { snapshotResponse } from "../supervisor/serve.ts";
import { takeLdbSnapshot } from "../supervisor/snapshot.ts";
import { openTarget } from "../supervisor/target.ts";
import { openTestLdb, TEST_PHYSICAL_TABLE, writeRows } from "../supervisor/testing.ts";
import { bootstrapLdb, type BootstrapProgress } from "./bootstrap.ts";
import { BootstrapError } from "./errors.ts";

/** A temp folder with an LDB of `rows` rows published to `<dir>/pub`; returns the seq. */
async function published(rows = 500): Promise<{ dir: string; pub: string; seq: number }> {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-boot-" });
  const writer = openTestLdb(join(dir, "source.db"));
  const seq = writeRows(writer, 0, rows);
  writer.close();
  const snap = await takeLdbSnapshot(join(dir, "source.db"), join(dir, "snap.db"));
  const pub = join(dir, "pub");
  await publishSnapshot(snap, openTarget(`file://${pub}`));
  return { dir, pub, seq };
}

function rowCount(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Number(
      (db.prepare(`SELECT count(*) AS n FROM ${TEST_PHYSICAL_TABLE}`).get() as { n: number }).n,
    );
  } finally {
    db.close();
  }
}

function ldbSeq(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Number(
      (db.prepare("SELECT seq FROM _ldb_seq WHERE id = 1").get() as { seq: number }).seq,
    );
  } finally {
    db.close();
  }
}

function editManifest(pub: string, edit: (m: Record<string, unknown>) => void): void {
  const path = join(pub, "latest.json");
  const m = JSON.parse(Deno.readTextFileSync(path));
  edit(m);
  Deno.writeTextFileSync(path, JSON.stringify(m));
}

/** Names in a folder other than the given ones: leftovers of a failed bootstrap. */
function leftovers(dir: string, expected: string[]): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => !expected.includes(n));
}

Deno.test("bootstrapLdb installs a published snapshot and returns its seq", async () => {
  const { dir, pub, seq } = await published();
  try {
    const ldb = join(dir, "host", "ldb.db");
    const phases: BootstrapProgress["phase"][] = [];
    const result = await bootstrapLdb({
      url: `file://${pub}`,
      ldbPath: ldb,
      onProgress: (p) => phases.push(p.phase),
    });
    assert.equal(result.seq, seq);
    assert.equal(result.attempts, 1);
    assert.equal(ldbSeq(ldb), seq);
    assert.equal(rowCount(ldb), 500);
    assert.deepEqual([...new Set(phases)], ["download", "verify", "install"]);
    assert.deepEqual(leftovers(join(dir, "host"), ["ldb.db"]), []);
    // The installed file is a working LDB: the reflector's writer continues from its seq.
    const writer = openTestLdb(ldb);
    assert.equal(writer.seq, seq);
    assert.equal(writeRows(writer, 1000, 1), seq + 1);
    writer.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("bootstrapLdb refuses a wrong checksum, retries, then fails with a typed error", async () => {
  const { dir, pub } = await published();
  try {
    editManifest(pub, (m) => m.sha256 = "0".repeat(64));
    const ldb = join(dir, "host", "ldb.db");
    const retries: BootstrapProgress[] = [];
    const err = await bootstrapLdb({
      url: `file://${pub}/latest.json`,
      ldbPath: ldb,
      retries: 3,
      backoffMs: 1,
      onProgress: (p) => p.phase === "retry" && retries.push(p),
    }).then(() => undefined, (e) => e);
    assert.ok(err instanceof BootstrapError, String(err));
    assert.equal(err.code, "checksum_mismatch");
    assert.equal(err.attempts, 3);
    assert.equal(retries.length, 2);
    assert.match(err.message, /after 3 tries/);
    assert.equal(await Deno.stat(ldb).then(() => true, () => false), false);
    assert.deepEqual(leftovers(join(dir, "host"), []), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("bootstrapLdb refuses a truncated gzip even when its checksum matches", async () => {
  const { dir, pub, seq } = await published();
  try {
    const file = join(pub, snapshotName(seq));
    const bytes = Deno.readFileSync(file);
    const cut = bytes.subarray(0, Math.floor(bytes.length * 0.7));
    Deno.writeFileSync(file, cut);
    editManifest(pub, (m) => {
      m.sha256 = createHash("sha256").update(cut).digest("hex");
      m.sizeBytes = cut.length;
    });
    const ldb = join(dir, "host", "ldb.db");
    await assert.rejects(
      bootstrapLdb({ url: `file://${pub}`, ldbPath: ldb, retries: 2, backoffMs: 1 }),
      (e) => e instanceof BootstrapError && e.code === "bad_snapshot" && e.attempts === 2,
    );
    assert.deepEqual(leftovers(join(dir, "host"), []), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("bootstrapLdb refuses a sound gzip of a database that is not an LDB", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-boot-" });
  try {
    const plain = join(dir, "plain.db");
    const db = new DatabaseSync(plain);
    db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
    db.close();
    const gz = gzipSync(Deno.readFileSync(plain));
    const pub = join(dir, "pub");
    Deno.mkdirSync(pub);
    Deno.writeFileSync(join(pub, snapshotName(7)), gz);
    const entry = {
      file: snapshotName(7),
      seq: 7,
      sha256: createHash("sha256").update(gz).digest("hex"),
      sizeBytes: gz.length,
      createdAt: new Date().toISOString(),
    };
    Deno.writeTextFileSync(
      join(pub, "latest.json"),
      JSON.stringify({ version: 1, ...entry, snapshots: [entry] }),
    );
    await assert.rejects(
      bootstrapLdb({ url: `file://${pub}`, ldbPath: join(dir, "ldb.db"), retries: 1 }),
      (e) =>
        e instanceof BootstrapError && e.code === "bad_snapshot" && /not an LDB/.test(e.message),
    );
    assert.equal(await Deno.stat(join(dir, "ldb.db")).then(() => true, () => false), false);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("bootstrapLdb never clobbers an existing LDB", async () => {
  const { dir, pub } = await published();
  try {
    const ldb = join(dir, "host", "ldb.db");
    const writer = openTestLdb(ldb);
    writeRows(writer, 0, 3);
    writer.close();
    const before = Deno.readFileSync(ldb);
    // Without overwrite: refused at once, not retried.
    await assert.rejects(
      bootstrapLdb({ url: `file://${pub}`, ldbPath: ldb, retries: 5, backoffMs: 1 }),
      (e) => e instanceof BootstrapError && e.code === "ldb_exists" && e.attempts === 1,
    );
    // With overwrite, a failed download leaves it as it was.
    editManifest(pub, (m) => m.sha256 = "f".repeat(64));
    await assert.rejects(
      bootstrapLdb({
        url: `file://${pub}`,
        ldbPath: ldb,
        retries: 2,
        backoffMs: 1,
        overwrite: true,
      }),
      (e) => e instanceof BootstrapError && e.code === "checksum_mismatch",
    );
    assert.deepEqual(Deno.readFileSync(ldb), before);
    assert.deepEqual(leftovers(join(dir, "host"), ["ldb.db"]), []);
    assert.equal(rowCount(ldb), 3);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("bootstrapLdb reports a missing publication as not_found", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-boot-" });
  try {
    await assert.rejects(
      bootstrapLdb({
        url: `file://${dir}/nothing`,
        ldbPath: join(dir, "l.db"),
        retries: 2,
        backoffMs: 1,
      }),
      (e) => e instanceof BootstrapError && e.code === "not_found" && e.attempts === 2,
    );
    await assert.rejects(
      bootstrapLdb({ url: "s3://bucket/x", ldbPath: join(dir, "l.db") }),
      (e) => e instanceof BootstrapError && e.code === "bad_url" && e.attempts === 1,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("bootstrapLdb over HTTP: a manifest prefix and the executive's /v1/snapshot", async () => {
  const { dir, pub, seq } = await published();
  let snapshotGets = 0;
  let failFirst = true;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/v1/snapshot") {
      snapshotGets++;
      // The first answer is a transient failure: bootstrap must retry past it.
      if (failFirst) {
        failFirst = false;
        return new Response("leader changing", { status: 503 });
      }
      return await snapshotResponse(pub);
    }
    if (path.startsWith("/pub/")) {
      try {
        return new Response(await Deno.readFile(join(pub, path.slice(5))));
      } catch {
        return new Response("", { status: 404 });
      }
    }
    return new Response("", { status: 404 });
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const viaManifest = await bootstrapLdb({
      url: `${base}/pub/`,
      ldbPath: join(dir, "a", "ldb.db"),
    });
    assert.equal(viaManifest.seq, seq);
    assert.equal(rowCount(join(dir, "a", "ldb.db")), 500);

    const viaExecutive = await bootstrapLdb({
      url: `${base}/v1/snapshot`,
      ldbPath: join(dir, "b", "ldb.db"),
      backoffMs: 1,
    });
    assert.equal(viaExecutive.seq, seq);
    assert.equal(viaExecutive.attempts, 2);
    assert.equal(snapshotGets, 2);
    assert.equal(ldbSeq(join(dir, "b", "ldb.db")), seq);

    // The executive's answer carries the manifest's facts as headers.
    const res = await snapshotResponse(pub);
    await res.body?.cancel();
    const parsed = parseManifest(Deno.readTextFileSync(join(pub, "latest.json")));
    assert.ok("manifest" in parsed);
    assert.equal(res.headers.get("x-ctl-seq"), String(seq));
    assert.equal(res.headers.get("x-ctl-sha256"), parsed.manifest.sha256);
    assert.equal(res.headers.get("content-length"), String(parsed.manifest.sizeBytes));
    const none = await snapshotResponse(join(dir, "empty"));
    assert.equal(none.status, 404);
    assert.equal((await none.json()).error.code, "snapshot_not_found");
  } finally {
    await server.shutdown();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("bootstrapLdb removes an orphan WAL left at the LDB path before installing", async () => {
  const { dir, pub, seq } = await published(50);
  try {
    // A WAL from some other LDB at the path: SQLite would replay its frames onto the snapshot.
    const other = join(dir, "other", "ldb.db");
    const writer = openTestLdb(other);
    writeRows(writer, 100_000, 20);
    const host = join(dir, "host");
    Deno.mkdirSync(host);
    Deno.copyFileSync(other + "-wal", join(host, "ldb.db-wal"));
    writer.close();
    const ldb = join(host, "ldb.db");
    const result = await bootstrapLdb({ url: `file://${pub}`, ldbPath: ldb });
    assert.equal(result.seq, seq);
    assert.equal(ldbSeq(ldb), seq);
    assert.equal(rowCount(ldb), 50);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
