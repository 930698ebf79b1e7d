/** Membership routes and the Raft-backed deps (against a fake node: no cluster needed). */
import assert from "node:assert/strict";
import { createExecutiveApp } from "../../src/executive/app.ts";
import type { ExecutiveDeps, MembershipDeps } from "../../src/executive/deps.ts";
import { createRaftExecutiveDeps, type RaftNodeLike } from "../../src/executive/raft_deps.ts";
import { SeqWatch } from "../../src/executive/seq_watch.ts";
import { NotLeaderError, RaftNodeError } from "../../src/raftnode/errors.ts";
import { ADMIN, assertError, Harness, withHarness } from "./harness.ts";

function withMembership(h: Harness, calls: string[]): ExecutiveDeps {
  const m: MembershipDeps = {
    addLearner: (id, url) => Promise.resolve(void calls.push(`learner ${id} ${url}`)),
    promote: (id) => Promise.resolve(void calls.push(`promote ${id}`)),
    remove: (id) => Promise.resolve(void calls.push(`remove ${id}`)),
    transferLeader: (id) => Promise.resolve(void calls.push(`transfer ${id}`)),
  };
  const d = h.deps;
  return {
    propose: (c) => d.propose(c),
    readBarrier: () => d.readBarrier(),
    sor: d.sor,
    isLeader: () => true,
    leaderUrl: () => null,
    status: () => d.status(),
    waitForSeq: (s, ms) => d.waitForSeq(s, ms),
    adminToken: d.adminToken,
    destructiveChanges: true,
    now: () => d.now(),
    membership: m,
  };
}

Deno.test("membership routes add voters and learners, remove, transfer; admin only", async () => {
  await withHarness(async (h) => {
    const calls: string[] = [];
    const app = createExecutiveApp(withMembership(h, calls));
    const post = (path: string, body: unknown, headers: Record<string, string> = ADMIN) =>
      app.request(path, { method: "POST", headers, body: JSON.stringify(body) });
    const added = await post("/v1/cluster/members", { id: "e4", url: "http://d:7001" });
    assert.equal(added.status, 200);
    assert.deepEqual(await added.json(), { id: "e4", url: "http://d:7001", voter: true });
    assert.equal(
      (await post("/v1/cluster/members", { id: "e5", url: "http://e:7001", voter: false })).status,
      200,
    );
    assert.equal(
      (await app.request("/v1/cluster/members/e4", { method: "DELETE", headers: ADMIN })).status,
      200,
    );
    assert.equal((await post("/v1/cluster/leader", { id: "e2" })).status, 200);
    assert.equal((await post("/v1/cluster/members/e5/promote", {})).status, 200);
    assert.deepEqual(calls, [
      "learner e4 http://d:7001",
      "promote e4",
      "learner e5 http://e:7001",
      "remove e4",
      "transfer e2",
      "promote e5",
    ]);
    const bad = await post("/v1/cluster/members", { id: "e 6", url: "http://x:1" });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const noAuth = await post("/v1/cluster/members", { id: "e6", url: "http://x:1" }, {});
    assert.equal(noAuth.status, 401);
    await noAuth.body?.cancel();
    assert.equal(calls.length, 6);
    // A backend without membership says so.
    assertError(await h.admin("POST", "/v1/cluster/leader", { id: "e2" }), 404, "not_found");
  });
});

Deno.test("Raft-backed deps map node failures to stable 503/413 codes and find the leader", async () => {
  const h = new Harness();
  try {
    let failure: Error | null = null;
    let role: "leader" | "follower" = "follower";
    const node = {
      propose: (data: Uint8Array) =>
        failure
          ? Promise.reject(failure)
          : Promise.resolve(h.deps.sor.apply(h.deps.sor.appliedIndex() + 1, data)),
      readIndex: () => (failure ? Promise.reject(failure) : Promise.resolve()),
      status: () => ({
        id: "e1",
        role,
        term: 2,
        leader: role === "leader" ? "e1" : "e2",
        commitIndex: 0,
        appliedIndex: 0,
        snapshotIndex: 0,
        members: [],
      }),
      peerUrls: () => ({ e1: "http://a:7001", e2: "http://b:7001" }),
      isLeader: () => role === "leader",
      leaderUrl: () => (role === "leader" ? "http://a:7001" : "http://b:7001"),
      addLearner: () => Promise.resolve(),
      promote: () => Promise.resolve(),
      remove: () => Promise.resolve(),
      transferLeader: () => Promise.resolve(),
    } as unknown as RaftNodeLike;
    const deps = createRaftExecutiveDeps({
      node,
      sor: h.deps.sor,
      watch: new SeqWatch(),
      adminToken: "t",
      destructiveChanges: false,
    });
    assert.equal(deps.isLeader(), false);
    assert.equal(deps.leaderUrl(), "http://b:7001");
    role = "leader";
    assert.equal(deps.isLeader(), true);
    assert.deepEqual(await deps.propose({ type: "create_family", family: "fam", ts: 1 }), {
      ok: true,
      seq: 1,
    });
    const cases: [Error, string][] = [
      [new NotLeaderError("e2"), "no_leader"],
      [new RaftNodeError("TIMEOUT", "slow"), "timeout"],
      [new RaftNodeError("OVERLOADED", "busy"), "overloaded"],
      [new RaftNodeError("TOO_LARGE", "big"), "body_too_large"],
    ];
    for (const [err, code] of cases) {
      failure = err;
      await assert.rejects(() => deps.propose({ type: "create_family", family: "fam2", ts: 1 }), {
        code,
      });
    }
    await assert.rejects(() => deps.readBarrier(), { code: "body_too_large" });
    const status = await deps.status();
    assert.equal(status.healthy, true);
    assert.equal(status.lastSeq, 1);
  } finally {
    h.close();
  }
});
