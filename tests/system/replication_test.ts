/**
 * Whole-system replication: 3 executive processes and 2 reflector processes. Random mutations
 * over all six field types, composite keys and fields added mid-run, sent to any executive;
 * afterwards every SoR and every LDB hold the same data, table by table, and each LDB's
 * `_ldb_seq` is the last ledger seq.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  ADMIN,
  call,
  checksumsOf,
  Cluster,
  ldbSeq,
  reflector,
  rng,
  waitFor,
  WRITER,
} from "./harness.ts";

const SEED = Number(Deno.env.get("CTL_TEST_SEED") ?? 20261123);

function randomBytesB64(r: () => number, max: number): string {
  const n = Math.floor(r() * max);
  return Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256))).toString("base64");
}

Deno.test({
  name: "3 executives and 2 reflectors: every LDB equals the SoR after random mutations",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ctl-replication-" });
    const cluster = new Cluster(dir, 3);
    const r1 = reflector(dir, "r1", cluster.urls);
    const r2 = reflector(dir, "r2", [...cluster.urls].reverse());
    const r = rng(SEED);
    try {
      cluster.start();
      r1.start();
      await cluster.leader();
      const any = () => cluster.urls[Math.floor(r() * cluster.urls.length)];
      const ok = async (reply: Promise<{ status: number; json: unknown }>, what: string) => {
        const res = await reply;
        assert.equal(res.status, 200, `${what}: ${JSON.stringify(res.json)} (seed ${SEED})`);
        return res.json as { seq: number };
      };
      await ok(call(any(), "POST", "/families/shop", { headers: ADMIN }), "create family");
      await ok(
        call(any(), "POST", "/families/shop/tables/items", {
          headers: ADMIN,
          json: {
            fields: [
              ["s", "string"],
              ["i", "integer"],
              ["d", "decimal"],
              ["t", "text"],
              ["b", "binary"],
              ["bs", "bytestring"],
            ],
            keyFields: ["s", "i"],
          },
        }),
        "create items",
      );
      await ok(
        call(any(), "POST", "/families/shop/tables/tags", {
          headers: ADMIN,
          json: { fields: [["tag", "bytestring"], ["n", "integer"]], keyFields: ["tag"] },
        }),
        "create tags",
      );
      await ok(
        call(any(), "POST", "/writers/writer1", { headers: ADMIN, body: "secret-one" }),
        "register writer",
      );

      const items = new Map<string, { s: string; i: number | string }>();
      const tags = new Set<string>();
      let extra = false;
      let lastSeq = 0;
      for (let batch = 0; batch < 120; batch++) {
        if (batch === 60) {
          await ok(
            call(any(), "PUT", "/families/shop/tables/items", {
              headers: ADMIN,
              json: { fields: [["extra", "text"]] },
            }),
            "add field",
          );
          extra = true;
          r2.start(); // the second reflector starts late and catches up
        }
        const mutations: unknown[] = [];
        const used = new Set<string>();
        const size = 1 + Math.floor(r() * 5);
        for (let m = 0; m < size; m++) {
          const pick = r();
          if (pick < 0.55) {
            const s = `k${Math.floor(r() * 40)}`;
            const i = r() < 0.2 ? "9007199254740993" : Math.floor(r() * 5) - 2;
            const key = `${s}/${i}`;
            if (used.has(key)) continue;
            used.add(key);
            items.set(key, { s, i });
            mutations.push({
              table: "items",
              delete: false,
              values: {
                s,
                i,
                d: r() < 0.1 ? null : Math.round(r() * 1e6) / 1e3,
                t: r() < 0.1 ? null : `text ✓ ${Math.floor(r() * 1000)}`,
                b: randomBytesB64(r, 32),
                bs: randomBytesB64(r, 16),
                ...(extra ? { extra: r() < 0.5 ? null : "x" } : {}),
              },
            });
          } else if (pick < 0.75 && items.size > 0) {
            const keys = [...items.keys()];
            const key = keys[Math.floor(r() * keys.length)];
            if (used.has(key)) continue;
            used.add(key);
            mutations.push({ table: "items", delete: true, values: items.get(key) });
            items.delete(key);
          } else if (pick < 0.9) {
            const tag = randomBytesB64(r, 6) || "AA==";
            if (used.has(`tag:${tag}`)) continue;
            used.add(`tag:${tag}`);
            tags.add(tag);
            mutations.push({
              table: "tags",
              delete: false,
              values: { tag, n: Math.floor(r() * 1e9) },
            });
          } else if (tags.size > 0) {
            const tag = [...tags][Math.floor(r() * tags.size)];
            if (used.has(`tag:${tag}`)) continue;
            used.add(`tag:${tag}`);
            tags.delete(tag);
            mutations.push({ table: "tags", delete: true, values: { tag } });
          }
        }
        if (mutations.length === 0) continue;
        const res = await ok(
          call(any(), "POST", "/families/shop/mutations", { headers: WRITER, json: { mutations } }),
          `batch ${batch}`,
        );
        assert.ok(res.seq > lastSeq, "seqs increase");
        lastSeq = res.seq;
      }

      await cluster.waitLastSeq(lastSeq);
      for (const name of ["r1", "r2"]) {
        await waitFor(
          `${name} to reach seq ${lastSeq}`,
          () => ldbSeq(`${dir}/${name}/ldb.db`) === lastSeq,
          20_000,
        );
      }
      // Every executive exports its Raft and ledger figures to Prometheus.
      const leader = await cluster.leader();
      const metrics = await (await fetch(`${leader.url}/metrics`)).text();
      const metric = (name: string) =>
        Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(metrics)?.[1]);
      assert.equal(metric("ctl_ledger_last_seq"), lastSeq);
      assert.equal(metric("ctl_raft_is_leader"), 1);
      assert.ok(metric("ctl_raft_commit_index") >= metric("ctl_raft_applied_index"));
      assert.ok(metric("ctl_raft_log_append_seconds_count") > 0, "fsync latency is measured");
      assert.ok(metric("ctl_sor_apply_seconds_count") > 0, "apply latency is measured");
      assert.ok(
        metric("ctl_sor_applied_entries_total") >= metric("ctl_sor_apply_seconds_count"),
        "each applied batch holds at least one entry",
      );
      const okProposals = metrics.split("\n").find((l) =>
        l.startsWith('ctl_proposals_total{outcome="ok"} ')
      );
      assert.ok(Number(okProposals?.split(" ")[1]) > 0, "successful proposals are counted");
      // One writer at a time: the leader applied its writes ahead of their commit, and the
      // replicas and LDBs below still match it exactly.
      const kept = metrics.split("\n").find((l) =>
        l.startsWith('ctl_sor_speculations_total{outcome="kept"} ')
      );
      assert.ok(Number(kept?.split(" ")[1]) > 0, `speculations are kept: ${kept}`);
      const reference = await cluster.sorChecksums("e1");
      assert.equal(reference.length, 2);
      assert.ok(reference.every((t) => t.rows > 0), "both tables hold rows");
      for (const id of ["e2", "e3"]) {
        assert.deepEqual(await cluster.sorChecksums(id), reference, `SoR of ${id} equals e1's`);
      }
      for (const name of ["r1", "r2"]) {
        assert.deepEqual(
          checksumsOf(`${dir}/${name}/ldb.db`),
          reference,
          `LDB of ${name} equals the SoR (seed ${SEED})`,
        );
      }
    } finally {
      await r1.kill();
      await r2.kill();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
