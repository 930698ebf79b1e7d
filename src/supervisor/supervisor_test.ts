import assert from "node:assert/strict";
import { join } from "node:path";
import { parseManifest } from "./manifest.ts";
import { Supervisor } from "./supervisor.ts";
import { openTarget } from "./target.ts";
import { openTestLdb, writeRows } from "./testing.ts";

Deno.test("Supervisor publishes when the LDB moved and skips when it did not", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-sup-" });
  try {
    const ldb = join(dir, "ldb.db");
    const out = join(dir, "out");
    const writer = openTestLdb(ldb);
    const supervisor = new Supervisor({
      ldbPath: ldb,
      target: openTarget(`file://${out}`),
      keep: 2,
    });
    const seq1 = writeRows(writer, 0, 10);
    const first = await supervisor.snapshotOnce();
    assert.equal(first.kind, "published");
    assert.equal(first.kind === "published" && first.seq, seq1);
    assert.deepEqual(await supervisor.snapshotOnce(), {
      kind: "skipped",
      seq: seq1,
      reason: "unchanged",
    });
    const seq2 = writeRows(writer, 10, 10);
    const third = await supervisor.snapshotOnce();
    assert.equal(third.kind === "published" && third.seq, seq2);
    writer.close();
    // The working copies never stay in the LDB's folder.
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith(".ctl-snapshot")),
      [],
    );
    const parsed = parseManifest(Deno.readTextFileSync(join(out, "latest.json")));
    assert.ok("manifest" in parsed && parsed.manifest.seq === seq2);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Supervisor reports a missing LDB as a failed cycle instead of throwing", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-sup-" });
  try {
    const supervisor = new Supervisor({
      ldbPath: join(dir, "none.db"),
      target: openTarget(`file://${join(dir, "out")}`),
    });
    const result = await supervisor.snapshotOnce();
    assert.equal(result.kind, "failed");
    assert.equal(result.kind === "failed" && result.code, "ldb_unavailable");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Supervisor.run takes the first snapshot at start and stops on stop()", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-sup-" });
  try {
    const ldb = join(dir, "ldb.db");
    const writer = openTestLdb(ldb);
    writeRows(writer, 0, 5);
    writer.close();
    const supervisor = new Supervisor({
      ldbPath: ldb,
      target: openTarget(`file://${join(dir, "out")}`),
      intervalMs: 60_000,
    });
    const running = supervisor.run();
    const t0 = performance.now();
    while (!supervisor.lastResult && performance.now() - t0 < 5_000) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(supervisor.lastResult?.kind, "published");
    supervisor.stop();
    await running;
    assert.ok(performance.now() - t0 < 5_000, "stop() did not cut the interval short");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
