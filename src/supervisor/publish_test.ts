import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { SnapshotError } from "./errors.ts";
import { parseManifest, snapshotName } from "./manifest.ts";
import { publishSnapshot } from "./publish.ts";
import { takeLdbSnapshot } from "./snapshot.ts";
import { openTarget } from "./target.ts";
import { openTestLdb, writeRows } from "./testing.ts";

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function readManifest(dir: string) {
  const parsed = parseManifest(Deno.readTextFileSync(join(dir, "latest.json")));
  if ("problem" in parsed) throw new Error(parsed.problem);
  return parsed.manifest;
}

Deno.test("publishSnapshot writes the gzip, its .sha256 and latest.json to a file:// dir", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-pub-" });
  try {
    const writer = openTestLdb(join(dir, "ldb.db"));
    const seq = writeRows(writer, 0, 200);
    writer.close();
    const snap = await takeLdbSnapshot(join(dir, "ldb.db"), join(dir, "snap.db"));
    const out = join(dir, "published");
    const result = await publishSnapshot(snap, openTarget(`file://${out}`), {
      now: () => new Date("2026-01-02T03:04:05Z"),
    });
    assert.ok(result.published);

    const name = snapshotName(seq);
    const gz = Deno.readFileSync(join(out, name));
    const manifest = readManifest(out);
    assert.equal(manifest.file, name);
    assert.equal(manifest.seq, seq);
    assert.equal(manifest.sha256, sha256Hex(gz));
    assert.equal(manifest.sizeBytes, gz.length);
    assert.equal(manifest.ldbSizeBytes, snap.sizeBytes);
    assert.equal(manifest.createdAt, "2026-01-02T03:04:05.000Z");
    assert.deepEqual(manifest.snapshots.map((s) => s.seq), [seq]);
    assert.equal(Deno.readTextFileSync(join(out, `${name}.sha256`)), `${sha256Hex(gz)}  ${name}\n`);
    // The published bytes decompress to exactly the snapshot.
    assert.deepEqual(new Uint8Array(gunzipSync(gz)), Deno.readFileSync(snap.path));
    // Nothing temporary left behind.
    assert.deepEqual(
      [...Deno.readDirSync(out)].map((e) => e.name).sort(),
      [name, `${name}.sha256`, "latest.json"].sort(),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("publishSnapshot keeps the newest N, refuses older seqs, skips the same seq", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-pub-" });
  try {
    const ldb = join(dir, "ldb.db");
    const out = join(dir, "published");
    const target = openTarget(`file://${out}`);
    const writer = openTestLdb(ldb);
    const snaps = [];
    for (let i = 0; i < 5; i++) {
      writeRows(writer, i * 10, 10);
      snaps.push(await takeLdbSnapshot(ldb, join(dir, `snap${i}.db`)));
    }
    writer.close();
    // A stray temp file from an interrupted publication goes away with pruning.
    Deno.mkdirSync(out, { recursive: true });
    Deno.writeTextFileSync(join(out, `.${snapshotName(1)}.tmp-0123abcd`), "partial");
    for (const snap of snaps) {
      const r = await publishSnapshot(snap, target, { keep: 3 });
      assert.ok(r.published);
    }
    const seqs = snaps.map((s) => s.seq);
    const manifest = readManifest(out);
    assert.equal(manifest.seq, seqs[4]);
    assert.deepEqual(manifest.snapshots.map((s) => s.seq), [seqs[4], seqs[3], seqs[2]]);
    const expected = seqs.slice(2).flatMap((s) => [snapshotName(s), `${snapshotName(s)}.sha256`]);
    assert.deepEqual(
      [...Deno.readDirSync(out)].map((e) => e.name).sort(),
      [...expected, "latest.json"].sort(),
    );

    // An older snapshot is never published, and the manifest stays as it was.
    const before = Deno.readTextFileSync(join(out, "latest.json"));
    await assert.rejects(
      publishSnapshot(snaps[1], target, { keep: 3 }),
      (e) => e instanceof SnapshotError && e.code === "snapshot_stale",
    );
    assert.equal(Deno.readTextFileSync(join(out, "latest.json")), before);
    // The same seq again is a no-op.
    const again = await publishSnapshot(snaps[4], target, { keep: 3 });
    assert.deepEqual(again, { published: false, reason: "unchanged", publishedSeq: seqs[4] });
    assert.equal(Deno.readTextFileSync(join(out, "latest.json")), before);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("publishSnapshot PUTs to an http:// prefix and DELETEs pruned objects", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-pub-" });
  const objects = new Map<string, Uint8Array<ArrayBuffer>>();
  const requests: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    requests.push(`${req.method} ${path}`);
    if (req.headers.get("authorization") !== "Bearer s3cret") {
      return new Response("", { status: 401 });
    }
    if (req.method === "PUT") objects.set(path, new Uint8Array(await req.arrayBuffer()));
    else if (req.method === "DELETE") objects.delete(path);
    else if (req.method === "GET") {
      const body = objects.get(path);
      return body ? new Response(body) : new Response("", { status: 404 });
    }
    return new Response(null, { status: 204 });
  });
  try {
    const ldb = join(dir, "ldb.db");
    const writer = openTestLdb(ldb);
    const target = openTarget(`http://127.0.0.1:${server.addr.port}/snaps/`, {
      stagingDir: join(dir, "staging"),
      token: "s3cret",
    });
    const seqs: number[] = [];
    for (let i = 0; i < 3; i++) {
      seqs.push(writeRows(writer, i * 10, 10));
      const snap = await takeLdbSnapshot(ldb, join(dir, `snap${i}.db`));
      assert.ok((await publishSnapshot(snap, target, { keep: 2 })).published);
    }
    writer.close();
    assert.deepEqual(
      [...objects.keys()].sort(),
      [
        `/snaps/${snapshotName(seqs[1])}`,
        `/snaps/${snapshotName(seqs[1])}.sha256`,
        `/snaps/${snapshotName(seqs[2])}`,
        `/snaps/${snapshotName(seqs[2])}.sha256`,
        "/snaps/latest.json",
      ].sort(),
    );
    const parsed = parseManifest(new TextDecoder().decode(objects.get("/snaps/latest.json")));
    assert.ok("manifest" in parsed);
    assert.equal(parsed.manifest.seq, seqs[2]);
    assert.equal(
      parsed.manifest.sha256,
      sha256Hex(objects.get(`/snaps/${snapshotName(seqs[2])}`)!),
    );
    assert.ok(requests.includes(`DELETE /snaps/${snapshotName(seqs[0])}`));
    // The manifest is written after the snapshot it names.
    const putSnap = requests.lastIndexOf(`PUT /snaps/${snapshotName(seqs[2])}`);
    assert.ok(putSnap >= 0 && putSnap < requests.lastIndexOf("PUT /snaps/latest.json"));
    // Staged uploads are cleaned up.
    assert.deepEqual([...Deno.readDirSync(join(dir, "staging"))], []);
  } finally {
    await server.shutdown();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("openTarget refuses URLs it cannot publish to", () => {
  for (const url of ["s3://bucket/x", "not a url", "ftp://h/x"]) {
    assert.throws(
      () => openTarget(url),
      (e) => e instanceof SnapshotError && e.code === "bad_target_url",
    );
  }
});
