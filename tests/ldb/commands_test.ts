/**
 * The commands as processes: `ctl reflector` follows a ledger server and serves /status until
 * SIGTERM; `ctl sidecar` then serves the LDB it wrote; `ctl query` and `ctl get` read it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { syntheticLedger, TestLedgerServer } from "../../src/reflector/test_ledger_server.ts";

const CTL = new URL("../../main.ts", import.meta.url).pathname;

function ctl(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CTL, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function output(args: string[]) {
  const out = await ctl(args).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test("ctl reflector, sidecar, query and get work together as processes", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-commands-" });
  const ldb = join(dir, "data", "ldb.db");
  const server = new TestLedgerServer({ heartbeatMs: 50 });
  server.append(...syntheticLedger(100));
  const statusPort = freePort();
  const reflector = ctl([
    "reflector",
    "--ldb",
    ldb,
    "--executive",
    `http://127.0.0.1:1,${server.url}`, // the first is down: fail over
    "--families",
    "fam",
    "--changelog",
    join(dir, "changes.log"),
    "--listen",
    `127.0.0.1:${statusPort}`,
  ]);
  try {
    const status = await poll("reflector status", async () => {
      const res = await fetch(`http://127.0.0.1:${statusPort}/status`);
      const body = await res.json();
      return body.appliedSeq === 100 && body.clusterSeq === 100 ? body : undefined;
    });
    assert.equal(status.lagEntries, 0);
    const metrics = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
    assert.match(metrics, /^ctl_reflector_applied_seq 100$/m);

    const q = await output([
      "query",
      "--ldb",
      ldb,
      "--format",
      "json",
      "SELECT count(*) AS n FROM other___items",
    ]);
    assert.equal(q.code, 1, "family other was filtered out: its table does not exist");
    assert.match(q.stderr, /no such table/);
    const count = await output([
      "query",
      "--ldb",
      ldb,
      "--format",
      "csv",
      "SELECT seq FROM _ldb_seq WHERE id = 1",
    ]);
    assert.equal(count.stdout, "seq\r\n100\r\n");
    const refused = await output(["query", "--ldb", ldb, "DELETE FROM fam___items"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /read-only/);
    const first = await output([
      "query",
      "--ldb",
      ldb,
      "--format",
      "ndjson",
      "SELECT * FROM fam___items ORDER BY id DESC LIMIT 1",
    ]);
    const expected = JSON.parse(first.stdout);
    const got = await output(["get", "--ldb", ldb, "fam", "items", String(expected.id)]);
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual(JSON.parse(got.stdout), expected);
    const missing = await output(["get", "--ldb", ldb, "fam", "items", "999999"]);
    assert.equal(missing.code, 1);

    const sidecarPort = freePort();
    const sidecar = ctl(["sidecar", "--ldb", ldb, "--listen", `127.0.0.1:${sidecarPort}`]);
    try {
      const row = await poll("sidecar", async () => {
        const res = await fetch(`http://127.0.0.1:${sidecarPort}/get-row-by-key/fam/items`, {
          method: "POST",
          body: JSON.stringify({ key: [{ value: expected.id }] }),
        });
        return res.status === 200 ? await res.json() : undefined;
      });
      assert.deepEqual(row, expected);
    } finally {
      sidecar.kill("SIGTERM");
      assert.equal((await sidecar.status).code, 0);
      await sidecar.stdout.cancel();
      await sidecar.stderr.cancel();
    }
  } finally {
    reflector.kill("SIGTERM");
    const status = await reflector.status;
    await reflector.stdout.cancel();
    await reflector.stderr.cancel();
    await server.close();
    Deno.removeSync(dir, { recursive: true });
    assert.equal(status.code, 0, "SIGTERM stops the reflector cleanly");
  }
});

Deno.test("ctl reflector refuses a bad executive URL or listen address with exit 2", async () => {
  const bad = await output(["reflector", "--ldb", "/tmp/x.db", "--executive", "not a url"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a URL/);
  const listen = await output([
    "reflector",
    "--ldb",
    "/tmp/x.db",
    "--executive",
    "http://a:1",
    "--listen",
    "nowhere",
  ]);
  assert.equal(listen.code, 2);
  assert.match(listen.stderr, /host:port/);
});
