/**
 * The ledger endpoints reflectors consume (exact shapes), and write forwarding from followers.
 */
import assert from "node:assert/strict";
import { createExecutiveApp } from "../../src/executive/app.ts";
import type { ExecutiveDeps } from "../../src/executive/deps.ts";
import type { LedgerEntry } from "../../src/ledger/types.ts";
import { ADMIN, assertError, type Harness, withHarness, WRITER } from "./harness.ts";

const row = (id: string) => ({ table: "users", values: { id, n: 1, note: null } });

Deno.test("GET /v1/ledger pages entries in order with lastSeq", async () => {
  await withHarness(async (h) => {
    await h.ok(h.mutate("fam", { mutations: [row("a")] }));
    await h.ok(h.mutate("fam", { mutations: [row("b")] }));
    const all = await h.ok(h.call("GET", "/v1/ledger?after=0"));
    assert.deepEqual(all.json.entries.map((e: LedgerEntry) => e.seq), [1, 2, 3, 4]);
    assert.equal(all.json.lastSeq, 4);
    assert.deepEqual(Object.keys(all.json.entries[3]).sort(), ["family", "ops", "seq", "ts"]);
    const page = await h.ok(h.call("GET", "/v1/ledger?after=1&limit=2"));
    assert.deepEqual(page.json.entries.map((e: LedgerEntry) => e.seq), [2, 3]);
    assert.deepEqual((await h.ok(h.call("GET", "/v1/ledger?after=4"))).json, {
      entries: [],
      lastSeq: 4,
    });
    assertError(await h.call("GET", "/v1/ledger?after=-1"), 400, "bad_request");
    assertError(await h.call("GET", "/v1/ledger?limit=abc"), 400, "bad_request");
  });
});

Deno.test("GET /v1/ledger with wait_ms answers as soon as an entry commits", async () => {
  await withHarness(async (h) => {
    const last = h.deps.sor.lastSeq();
    const started = performance.now();
    const pending = h.call("GET", `/v1/ledger?after=${last}&wait_ms=5000`);
    await new Promise((r) => setTimeout(r, 30));
    await h.ok(h.mutate("fam", { mutations: [row("a")] }));
    const reply = await pending;
    const elapsedMs = performance.now() - started;
    assert.deepEqual(reply.json.entries.map((e: LedgerEntry) => e.seq), [last + 1]);
    assert.ok(elapsedMs < 2000, `long-poll took ${elapsedMs} ms`);
    // With nothing new it waits out wait_ms, then answers empty.
    const idle = await h.ok(h.call("GET", `/v1/ledger?after=${last + 1}&wait_ms=50`));
    assert.deepEqual(idle.json, { entries: [], lastSeq: last + 1 });
  });
});

Deno.test("GET /v1/ledger/stream sends NDJSON entries as they commit, heartbeats when idle", async () => {
  await withHarness(async (h) => {
    const res = await h.app.request("/v1/ledger/stream?after=0");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    const nextLine = async (): Promise<Record<string, unknown>> => {
      while (!buffered.includes("\n")) {
        const { value, done } = await reader.read();
        assert.ok(!done, "stream ended");
        buffered += value;
      }
      const i = buffered.indexOf("\n");
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      return JSON.parse(line);
    };
    assert.equal((await nextLine()).seq, 1);
    assert.equal((await nextLine()).seq, 2);
    assert.deepEqual(await nextLine(), { heartbeat: 2 });
    await h.ok(h.mutate("fam", { mutations: [row("a")] }));
    let line = await nextLine();
    while ("heartbeat" in line) line = await nextLine();
    assert.equal(line.seq, 3);
    assert.deepEqual((line as unknown as LedgerEntry).ops[0].op, "upsert");
    assert.deepEqual(await nextLine(), { heartbeat: 3 });
    await reader.cancel();
  });
});

function followerOf(
  leader: Harness,
  options: { leaderUrl: string | null; seen?: Request[] },
): ExecutiveDeps {
  const deps = leader.deps;
  return {
    propose: () => Promise.reject(new Error("a follower must not propose")),
    readBarrier: () => deps.readBarrier(),
    sor: deps.sor,
    isLeader: () => false,
    leaderUrl: () => options.leaderUrl,
    status: () => Promise.resolve({ healthy: options.leaderUrl !== null, role: "follower" }),
    waitForSeq: (seq, ms) => deps.waitForSeq(seq, ms),
    adminToken: deps.adminToken,
    destructiveChanges: true,
    now: () => 0,
    // The "network": hands the forwarded request to the leader's app.
    fetch: ((input: URL, init: RequestInit) => {
      const req = new Request(input, init);
      options.seen?.push(req.clone());
      return Promise.resolve(leader.app.request(req));
    }) as typeof fetch,
  };
}

Deno.test("a follower forwards writes to the leader with X-Ctl-Forwarded", async () => {
  await withHarness(async (leader) => {
    const seen: Request[] = [];
    const follower = createExecutiveApp(
      followerOf(leader, { leaderUrl: "http://leader:7001", seen }),
    );
    const res = await follower.request("/families/fam/mutations", {
      method: "POST",
      headers: { ...WRITER, "content-type": "application/json" },
      body: JSON.stringify({ mutations: [row("fwd")] }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(await res.json(), { seq: leader.deps.sor.lastSeq() });
    assert.equal(seen.length, 1);
    assert.equal(seen[0].url, "http://leader:7001/families/fam/mutations");
    assert.equal(seen[0].headers.get("x-ctl-forwarded"), "1");
    assert.equal(seen[0].headers.get("ctlstore-writer"), "writer1");
    assert.deepEqual(await seen[0].json(), { mutations: [row("fwd")] });
    // Errors come back from the leader unchanged.
    const bad = await follower.request("/families/ab", { method: "POST", headers: ADMIN });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.code, "invalid_name");
    // Reads are served locally.
    const schema = await follower.request("/schema/table/fam/users");
    assert.equal(schema.status, 200);
  });
});

Deno.test("a write that arrives during an election waits for the new leader", async () => {
  await withHarness(async (leader) => {
    const options = { leaderUrl: null as string | null };
    setTimeout(() => options.leaderUrl = "http://leader:7001", 100);
    const follower = createExecutiveApp(followerOf(leader, options), { leaderWaitMs: 2000 });
    const res = await follower.request("/families/fam/mutations", {
      method: "POST",
      headers: { ...WRITER, "content-type": "application/json" },
      body: JSON.stringify({ mutations: [row("late")] }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(await res.json(), { seq: leader.deps.sor.lastSeq() });
  });
});

Deno.test("a follower with no leader, or a forwarded request at a follower, gets 503", async () => {
  await withHarness(async (leader) => {
    const before = leader.state();
    const lost = createExecutiveApp(followerOf(leader, { leaderUrl: null }), {
      leaderWaitMs: 200,
    });
    const started = performance.now();
    const res = await lost.request("/families/newfam", { method: "POST", headers: ADMIN });
    assert.ok(performance.now() - started >= 190, "it waited for an election first");
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.equal((await res.json()).error.code, "no_leader");
    const status = await lost.request("/status");
    assert.equal(status.status, 503);
    await status.body?.cancel();

    const follower = createExecutiveApp(followerOf(leader, { leaderUrl: "http://leader:7001" }));
    const loop = await follower.request("/families/newfam", {
      method: "POST",
      headers: { ...ADMIN, "x-ctl-forwarded": "1" },
    });
    assert.equal(loop.status, 503);
    assert.equal((await loop.json()).error.code, "no_leader");
    assert.deepEqual(leader.state(), before);
  });
});
