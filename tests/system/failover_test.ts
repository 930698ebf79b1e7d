/**
 * Failures with real processes: the leader killed under writes (idempotent retries apply each
 * write once), reflectors killed with -9 over and over, and the executive a reflector streams
 * from killed under it.
 */
import assert from "node:assert/strict";
import {
  call,
  checksumsOf,
  Cluster,
  createAppTable,
  CtlProcess,
  ldbSeq,
  reflector,
  rng,
  sleep,
  waitFor,
  WRITER,
} from "./harness.ts";

const SEED = Number(Deno.env.get("CTL_TEST_SEED") ?? 7);

async function setUp(cluster: Cluster): Promise<void> {
  // The writers here go as fast as the cluster answers: more than the default 1,000 rows a minute.
  await createAppTable((await cluster.leader()).url, [["id", "string"], ["n", "integer"]], {
    fastWriter: true,
  });
}

/** Sends one mutation with an idempotency key, retrying on any member until it is acknowledged. */
async function writeUntilAcked(
  cluster: Cluster,
  r: () => number,
  key: string,
  values: Record<string, unknown>,
  timeoutMs = 20_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const url = cluster.urls[Math.floor(r() * cluster.urls.length)];
    const res = await call(url, "POST", "/families/app/mutations", {
      headers: { ...WRITER, "idempotency-key": key },
      json: { mutations: [{ table: "rows", delete: false, values }] },
      timeoutMs: 3000,
    });
    if (res.status === 200) return res.json.seq;
    // 0 (connection refused or timed out) and 503 (no leader yet) are worth retrying; any other
    // answer is a bug in this test or in ctl.
    assert.ok(res.status === 0 || res.status === 503, `write ${key}: ${JSON.stringify(res)}`);
    last = JSON.stringify(res);
    await sleep(50);
  }
  throw new Error(`write ${key} not acknowledged within ${timeoutMs} ms (last: ${last})`);
}

/** The whole ledger, read from one member. */
async function ledger(url: string): Promise<{ seq: number; ops: { values?: { id: string } }[] }[]> {
  const entries = [];
  let after = 0;
  for (;;) {
    const res = await call(url, "GET", `/v1/ledger?after=${after}&limit=1000`);
    assert.equal(res.status, 200);
    if (res.json.entries.length === 0) return entries;
    entries.push(...res.json.entries);
    after = res.json.entries.at(-1).seq;
  }
}

Deno.test({
  name: "leader killed under writes: idempotent retries apply each write once; SoRs identical",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ctl-failover-" });
    const cluster = new Cluster(dir, 3);
    const r = rng(SEED);
    try {
      cluster.start();
      await setUp(cluster);
      const acked = new Map<string, number>();
      let killed: string | null = null;
      const writes = 60;
      for (let k = 0; k < writes; k++) {
        if (k === 20) {
          killed = (await cluster.leader()).id;
          await cluster.member(killed).process.kill("SIGKILL");
        }
        if (k === 40 && killed) cluster.member(killed).process.start();
        acked.set(`w-${k}`, await writeUntilAcked(cluster, r, `w-${k}`, { id: `r${k}`, n: k }));
      }
      // A retry after the acknowledgement answers the first result and applies nothing.
      for (const k of [0, 25, 59]) {
        assert.equal(
          await writeUntilAcked(cluster, r, `w-${k}`, { id: `r${k}`, n: k }),
          acked.get(`w-${k}`),
          `retry of w-${k} returns the first seq`,
        );
      }
      const lastSeq = Math.max(...acked.values());
      await cluster.waitLastSeq(lastSeq, 20_000);
      const entries = await ledger((await cluster.leader()).url);
      for (let k = 0; k < writes; k++) {
        const applied = entries.filter((e) => e.ops.some((op) => op.values?.id === `r${k}`));
        assert.equal(applied.length, 1, `write w-${k} is in the ledger exactly once`);
        assert.equal(applied[0].seq, acked.get(`w-${k}`));
      }
      assert.deepEqual(
        entries.map((e) => e.seq),
        entries.map((_, i) => i + 1),
        "the ledger is gapless",
      );
      const reference = await cluster.sorChecksums("e1");
      assert.equal(reference[0].rows, writes);
      for (const id of ["e2", "e3"]) assert.deepEqual(await cluster.sorChecksums(id), reference);
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "reflectors killed with -9 twenty times, and their executive killed, still converge",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ctl-reflector-kill-" });
    const cluster = new Cluster(dir, 3);
    const r = rng(SEED + 1);
    // r1 is killed again and again; r2 streams from e1 first, and e1 is killed under it.
    const r1 = new CtlProcess("r1", [
      "reflector",
      "--ldb",
      `${dir}/r1/ldb.db`,
      "--executive",
      cluster.urls.join(","),
      "--changelog",
      `${dir}/r1/changelog.ndjson`,
      "--backoff-max",
      "300ms",
    ], `${dir}/r1.log`);
    const r2 = reflector(dir, "r2", cluster.urls);
    try {
      cluster.start();
      await setUp(cluster);
      r1.start();
      r2.start();
      let lastSeq = 0;
      let writing = true;
      let rowsWritten = 0;
      const writer = (async () => {
        for (let k = 0; writing; k++) {
          lastSeq = await writeUntilAcked(cluster, r, `k-${k}`, { id: `r${k % 50}`, n: k });
          rowsWritten++;
        }
      })();
      for (let i = 0; i < 20; i++) {
        await sleep(50 + Math.floor(r() * 200));
        await r1.kill("SIGKILL");
        r1.start();
      }
      // Kill the executive r2 streams from (its first URL); it must switch to another.
      await waitFor("r2 to apply something", () => ldbSeq(`${dir}/r2/ldb.db`) > 3);
      await cluster.member("e1").process.kill("SIGKILL");
      await sleep(1500);
      writing = false;
      await writer;
      await cluster.leader();
      await waitFor(
        `r2 to reach ${lastSeq} without e1`,
        () => ldbSeq(`${dir}/r2/ldb.db`) === lastSeq,
        20_000,
      );
      await waitFor(`r1 to reach ${lastSeq}`, () => ldbSeq(`${dir}/r1/ldb.db`) === lastSeq, 20_000);
      await cluster.waitLastSeq(lastSeq);
      const reference = await cluster.sorChecksums("e2");
      assert.deepEqual(checksumsOf(`${dir}/r1/ldb.db`), reference, "r1's LDB equals the SoR");
      assert.deepEqual(checksumsOf(`${dir}/r2/ldb.db`), reference, "r2's LDB equals the SoR");
      // The changelog names every row change exactly once, in ledger order, across 20 kills.
      await r1.kill("SIGTERM");
      const lines = (await Deno.readTextFile(`${dir}/r1/changelog.ndjson`)).trim().split("\n")
        .map((l) => JSON.parse(l) as { seq: number });
      const seqs = lines.map((l) => l.seq);
      assert.equal(new Set(seqs).size, seqs.length, "no ledger seq appears twice");
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in ledger order");
      assert.equal(lines.length, rowsWritten, "one line per row written");
    } finally {
      await r1.kill();
      await r2.kill();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
