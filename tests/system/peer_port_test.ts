/**
 * The peer port with real processes: members with and without one (`--peer-listen off`) in one
 * cluster, and a member killed with -9 that comes back on another peer port.
 */
import assert from "node:assert/strict";
import { call, Cluster, CLUSTER_SECRET, createAppTable, CtlProcess, WRITER } from "./harness.ts";

const SECRET_HEADER = "x-ctl-cluster-secret";

async function peerPort(cluster: Cluster, id: string): Promise<number | null> {
  const res = await fetch(`${cluster.member(id).url}/raft/peer-port`, {
    headers: { [SECRET_HEADER]: CLUSTER_SECRET },
  });
  if (res.status === 404) {
    assert.equal((await res.json()).error.code, "RAFT_NO_PEER_PORT");
    return null;
  }
  assert.equal(res.status, 200);
  return (await res.json()).port;
}

async function write(url: string, k: number): Promise<number> {
  const res = await call(url, "POST", "/families/app/mutations", {
    headers: WRITER,
    json: { mutations: [{ table: "rows", delete: false, values: { id: `r${k}`, n: k } }] },
  });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json.seq;
}

Deno.test({
  name:
    "members with and without a peer port replicate together; one killed -9 comes back on another port",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ctl-peer-port-" });
    const cluster = new Cluster(dir, 3);
    // e1 takes peer streams over HTTP only; e2 and e3 on peer ports of any free number.
    const e1 = cluster.member("e1");
    e1.process = new CtlProcess(
      "e1",
      [...e1.process.args, "--peer-listen", "off"],
      e1.process.logFile,
    );
    try {
      cluster.start();
      const leader = await cluster.leader();
      assert.equal(await peerPort(cluster, "e1"), null);
      const before = await peerPort(cluster, "e2");
      assert.ok(before !== null && before > 0);
      assert.ok((await peerPort(cluster, "e3")) !== null);
      const saved = JSON.parse(
        await Deno.readTextFile(`${cluster.member("e2").dataDir}/executive.json`),
      );
      assert.equal(saved.peerListen, "127.0.0.1:0");
      assert.equal(
        JSON.parse(await Deno.readTextFile(`${e1.dataDir}/executive.json`)).peerListen,
        "off",
      );

      await createAppTable(leader.url, [["id", "string"], ["n", "integer"]]);
      let seq = 0;
      for (let k = 0; k < 20; k++) seq = await write(leader.url, k);
      await cluster.waitLastSeq(seq);

      // A member with a peer port, killed and started again: it listens elsewhere now.
      const victim = leader.id === "e2" ? "e3" : "e2";
      await cluster.member(victim).process.kill("SIGKILL");
      for (let k = 20; k < 30; k++) seq = await write((await cluster.leader()).url, k);
      cluster.member(victim).process.start();
      const again = await cluster.leader();
      for (let k = 30; k < 40; k++) seq = await write(again.url, k);
      await cluster.waitLastSeq(seq, 20_000);
      const after = await peerPort(cluster, victim);
      assert.ok(after !== null && after > 0);
      const reference = await cluster.sorChecksums("e1");
      assert.equal(reference.find((t) => t.table === "rows")?.rows, 40);
      for (const id of ["e2", "e3"]) assert.deepEqual(await cluster.sorChecksums(id), reference);
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
