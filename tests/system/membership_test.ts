/**
 * Membership with real executives and the `ctl cluster` commands, under writes: a new member
 * joins with --join and catches up, leadership moves to it, an old member is removed (a
 * replacement), and nothing acknowledged is lost.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  ADMIN_TOKEN,
  call,
  Cluster,
  CLUSTER_SECRET,
  createAppTable,
  CtlProcess,
  freePorts,
  sleep,
  sorFileChecksums,
  waitFor,
  WRITER,
} from "./harness.ts";

const CTL = fileURLToPath(new URL("../../ctl", import.meta.url));

async function ctl(...args: string[]): Promise<string> {
  const out = await new Deno.Command(CTL, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `ctl ${args.join(" ")}: ${text}`);
  return text;
}

Deno.test({
  name: "join a member, transfer leadership to it, remove an old one: nothing acknowledged lost",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ctl-membership-" });
    const cluster = new Cluster(dir, 3);
    const [port4] = freePorts(1);
    const url4 = `http://127.0.0.1:${port4}`;
    const e4 = new CtlProcess("e4", [
      "executive",
      "--id",
      "e4",
      "--data",
      `${dir}/e4`,
      "--join",
      cluster.urls[0],
      "--advertise",
      url4,
      "--listen",
      `127.0.0.1:${port4}`,
      "--cluster-secret",
      CLUSTER_SECRET,
      "--admin-token",
      ADMIN_TOKEN,
    ], `${dir}/e4.log`);
    let urls = [...cluster.urls];
    const acked = new Set<number>();
    let writing = true;
    try {
      cluster.start();
      const { url } = await cluster.leader();
      await createAppTable(url, [["id", "integer"]]);
      const writer = (async () => {
        for (let k = 0; writing; k++) {
          for (let attempt = 0;; attempt++) {
            const target = urls[attempt % urls.length];
            const res = await call(target, "POST", "/families/app/mutations", {
              headers: { ...WRITER, "idempotency-key": `k${k}` },
              json: { mutations: [{ table: "rows", delete: false, values: { id: k } }] },
              timeoutMs: 3000,
            });
            if (res.status === 200) {
              acked.add(k);
              break;
            }
            assert.ok(res.status === 0 || res.status === 503, JSON.stringify(res));
            await sleep(50);
          }
        }
      })();
      await sleep(300);

      e4.start();
      await waitFor("e4 to join as a voter", async () => {
        const s = await call(url4, "GET", "/status");
        const members = (s.json?.members ?? []) as { id: string; voter: boolean }[];
        return members.length === 4 && members.every((m) => m.voter);
      }, 30_000);
      urls = [...urls, url4];
      const common = ["--executive", urls.join(","), "--admin-token", ADMIN_TOKEN];
      await ctl("cluster", "transfer-leader", "e4", ...common);
      await waitFor(
        "e4 to lead",
        async () => (await call(url4, "GET", "/status")).json?.role === "leader",
      );

      // Replace e1 by e4: remove it, then stop it.
      await ctl("cluster", "remove", "e1", ...common);
      urls = urls.filter((u) => u !== cluster.member("e1").url);
      await cluster.member("e1").process.kill("SIGTERM");
      const status = JSON.parse(await ctl("cluster", "status", "--executive", url4));
      assert.deepEqual(status.members.map((m: { id: string }) => m.id).sort(), ["e2", "e3", "e4"]);
      await sleep(500);
      writing = false;
      await writer;

      // Every acknowledged write is on every remaining member.
      const seqs = await Promise.all(urls.map((u) => call(u, "GET", "/status")));
      const lastSeq = Math.max(...seqs.map((s) => s.json.lastSeq));
      for (const u of urls) {
        await waitFor(
          `${u} to apply ${lastSeq}`,
          async () => (await call(u, "GET", "/status")).json?.lastSeq >= lastSeq,
        );
      }
      const ids = new Set<number>();
      let after = 0;
      for (;;) {
        const page = await call(url4, "GET", `/v1/ledger?after=${after}&limit=1000`);
        if (page.json.entries.length === 0) break;
        for (const e of page.json.entries) {
          for (const op of e.ops) if (op.op === "upsert") ids.add(op.values.id);
        }
        after = page.json.entries.at(-1).seq;
      }
      assert.ok(acked.size > 20, `writes ran throughout (${acked.size})`);
      for (const k of acked) assert.ok(ids.has(k), `acknowledged write ${k} is in the ledger`);
      const reference = await cluster.sorChecksums("e2");
      assert.deepEqual(await cluster.sorChecksums("e3"), reference);
      assert.deepEqual(
        await sorFileChecksums(`${dir}/e4/sor.db`, lastSeq),
        reference,
        "the new member holds it all",
      );
    } finally {
      writing = false;
      await e4.kill();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
