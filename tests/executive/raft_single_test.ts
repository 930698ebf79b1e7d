/**
 * The executive over a real (single-member) Raft node: writes go through the Raft log into the
 * SoR, and a restart of node and SoR resumes without applying anything twice.
 */
import assert from "node:assert/strict";
import { createExecutiveApp } from "../../src/executive/app.ts";
import { createRaftExecutiveDeps } from "../../src/executive/raft_deps.ts";
import { SeqWatch } from "../../src/executive/seq_watch.ts";
import { startExecutive } from "../../src/executive/server.ts";
import { PreparedCommand } from "../../src/sor/commands.ts";
import { RaftNode } from "../../src/raftnode/raft_node.ts";
import { sorRaftStateMachine } from "../../src/sor/raft_adapter.ts";
import { SorStateMachine } from "../../src/sor/state_machine.ts";

const ADMIN = { authorization: "Bearer admin-t" };
const WRITER = { "ctlstore-writer": "writer1", "ctlstore-secret": "secret1" };

async function startMember(dir: string) {
  const sor = new SorStateMachine(`${dir}/sor.db`);
  const watch = new SeqWatch(sor.lastSeq());
  await Deno.mkdir(`${dir}/raft`, { recursive: true });
  const node = await RaftNode.start({
    id: "e1",
    dataDir: `${dir}/raft`,
    stateMachine: sorRaftStateMachine(sor, (seq) => watch.notify(seq)),
    secret: "cluster-secret",
    peers: { e1: "http://127.0.0.1:9" },
    tickMs: 5,
    seed: 1,
  });
  const deadline = Date.now() + 5000;
  while (node.status().role !== "leader") {
    assert.ok(Date.now() < deadline, "single member did not become leader");
    await new Promise((r) => setTimeout(r, 10));
  }
  const deps = createRaftExecutiveDeps({
    node,
    sor,
    watch,
    adminToken: "admin-t",
    destructiveChanges: true,
  });
  const app = createExecutiveApp(deps);
  const stop = async () => {
    await node.stop();
    watch.close();
    sor.close();
  };
  return { sor, app, stop };
}

async function ok(res: Response | Promise<Response>) {
  const r = await res;
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return JSON.parse(text);
}

Deno.test("writes through a Raft node reach the SoR; a restart applies nothing twice", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-exec-raft-" });
  try {
    let m = await startMember(dir);
    try {
      await ok(m.app.request("/families/fam", { method: "POST", headers: ADMIN }));
      await ok(m.app.request("/families/fam/tables/users", {
        method: "POST",
        headers: ADMIN,
        body: JSON.stringify({ fields: [["id", "string"], ["n", "integer"]], keyFields: ["id"] }),
      }));
      await ok(
        m.app.request("/writers/writer1", { method: "POST", headers: ADMIN, body: "secret1" }),
      );
      const reply = await ok(m.app.request("/families/fam/mutations", {
        method: "POST",
        headers: WRITER,
        body: JSON.stringify({ mutations: [{ table: "users", values: { id: "a", n: 1 } }] }),
      }));
      assert.equal(reply.seq, 3);
      const bad = await m.app.request("/families/fam", { method: "POST", headers: ADMIN });
      assert.equal(bad.status, 409);
      await bad.body?.cancel();
      await ok(m.app.request("/schema/table/fam/users"));
      assert.equal((await ok(m.app.request("/status"))).role, "leader");
    } finally {
      await m.stop();
    }
    m = await startMember(dir);
    try {
      assert.equal(m.sor.lastSeq(), 3);
      assert.equal(m.sor.checksums()[0].rows, 1);
      const reply = await ok(m.app.request("/families/fam/mutations", {
        method: "POST",
        headers: WRITER,
        body: JSON.stringify({ mutations: [{ table: "users", values: { id: "b", n: 2 } }] }),
      }));
      assert.equal(reply.seq, 4);
      assert.deepEqual(m.sor.ledger(0, 10).map((e) => e.seq), [1, 2, 3, 4]);
    } finally {
      await m.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the executive's leader applies its own write from the mutation it validated, not by decoding and validating it again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-exec-prepared-" });
  const exec = await startExecutive({
    dataDir: dir,
    id: "e1",
    peers: { e1: "http://127.0.0.1:9" },
    clusterSecret: "cluster-secret",
    adminToken: "admin-t",
    destructiveChanges: false,
    raft: { tickMs: 5 },
  });
  try {
    const deadline = Date.now() + 5000;
    while (!exec.node.isLeader()) {
      assert.ok(Date.now() < deadline, "single member did not become leader");
      await new Promise((r) => setTimeout(r, 10));
    }
    const call = (path: string, headers: Record<string, string>, body?: string) =>
      ok(exec.handler(new Request(`http://e1${path}`, { method: "POST", headers, body })));
    await call("/families/fam", ADMIN);
    await call(
      "/families/fam/tables/users",
      ADMIN,
      JSON.stringify({ fields: [["id", "string"], ["n", "integer"]], keyFields: ["id"] }),
    );
    await call("/writers/writer1", ADMIN, "secret1");
    const locals: unknown[] = [];
    const applyEntries = exec.sor.applyEntries.bind(exec.sor);
    exec.sor.applyEntries = (entries) => {
      for (const e of entries) locals.push(e.local);
      return applyEntries(entries);
    };
    const reply = await call(
      "/families/fam/mutations",
      WRITER,
      JSON.stringify({ mutations: [{ table: "users", values: { id: "a", n: 1 } }] }),
    );
    assert.equal(reply.seq, 3);
    const mine = locals.filter((l) => l instanceof PreparedCommand);
    assert.equal(mine.length, 1, "the write reached the SoR beside the command the leader built");
    assert.ok(mine[0].mutation !== undefined, "and with the mutation it validated");
    assert.deepEqual(exec.sor.checksums()[0].rows, 1);
  } finally {
    await exec.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
