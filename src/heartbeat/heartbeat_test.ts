import assert from "node:assert/strict";
import { Hono } from "hono";
import { Heartbeat } from "./heartbeat.ts";

interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * A fake executive speaking ctlstore's admin and mutation routes: records every request,
 * remembers what exists (409 on the second creation), checks credentials, stores the row.
 */
function fakeExecutive(options: { down?: boolean } = {}) {
  const requests: Recorded[] = [];
  const state = {
    down: options.down ?? false,
    writers: new Map<string, string>(),
    families: new Set<string>(),
    tables: new Set<string>(),
    rows: new Map<string, unknown>(),
    seq: 0,
  };
  const app = new Hono();
  app.use(async (c, next) => {
    requests.push({
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      headers: Object.fromEntries(c.req.raw.headers),
      body: await c.req.text(),
    });
    if (state.down) return c.json({ error: { code: "no_leader", message: "no leader" } }, 503);
    return await next();
  });
  const admin = (auth: string | undefined) => auth === "Bearer admin-t";
  const conflict = (code: string) => ({ error: { code, message: `${code}` } });
  app.post("/writers/:w", async (c) => {
    if (!admin(c.req.header("authorization"))) return c.json(conflict("unauthorized"), 401);
    const secret = await c.req.text();
    const had = state.writers.get(c.req.param("w"));
    if (had !== undefined && had !== secret) return c.json(conflict("writer_exists"), 409);
    state.writers.set(c.req.param("w"), secret);
    return c.json({ seq: state.seq });
  });
  app.post("/families/:f", (c) => {
    if (!admin(c.req.header("authorization"))) return c.json(conflict("unauthorized"), 401);
    if (state.families.has(c.req.param("f"))) return c.json(conflict("family_exists"), 409);
    state.families.add(c.req.param("f"));
    return c.json({ seq: ++state.seq });
  });
  app.post("/families/:f/tables/:t", (c) => {
    if (!admin(c.req.header("authorization"))) return c.json(conflict("unauthorized"), 401);
    const key = `${c.req.param("f")}.${c.req.param("t")}`;
    if (state.tables.has(key)) return c.json(conflict("table_exists"), 409);
    state.tables.add(key);
    return c.json({ seq: ++state.seq });
  });
  app.post("/families/:f/mutations", async (c) => {
    const writer = c.req.header("ctlstore-writer") ?? "";
    if (state.writers.get(writer) !== c.req.header("ctlstore-secret")) {
      return c.json(conflict("unauthorized"), 401);
    }
    const body = await c.req.json() as {
      mutations: { table: string; values: { name: string } }[];
    };
    for (const m of body.mutations) {
      const key = `${c.req.param("f")}.${m.table}`;
      if (!state.tables.has(key)) return c.json(conflict("table_not_found"), 404);
      state.rows.set(`${key}/${m.values.name}`, m.values);
    }
    return c.json({ seq: ++state.seq });
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  return { url: `http://127.0.0.1:${server.addr.port}`, requests, state, server };
}

Deno.test("Heartbeat sets up writer, family and table, then upserts unix nanos", async () => {
  const exec = fakeExecutive();
  try {
    let now = 1_700_000_000_123_456_789n;
    const hb = new Heartbeat({
      executives: [exec.url],
      adminToken: "admin-t",
      writerSecret: "hb-secret",
      nowNanos: () => now,
    });
    const seq1 = await hb.beat();
    now += 15_000_000_000n;
    const seq2 = await hb.beat();
    assert.ok(seq2 > seq1);

    const setup = exec.requests.filter((r) => !r.path.endsWith("/mutations"));
    assert.deepEqual(setup.map((r) => `${r.method} ${r.path}`), [
      "POST /writers/heartbeat",
      "POST /families/ctlstore",
      "POST /families/ctlstore/tables/heartbeats",
    ]);
    assert.equal(setup[0].body, "hb-secret"); // raw body, as ctlstore takes it
    for (const r of setup) assert.equal(r.headers.authorization, "Bearer admin-t");
    assert.deepEqual(JSON.parse(setup[2].body), {
      fields: [["name", "string"], ["value", "integer"]],
      keyFields: ["name"],
    });

    const beats = exec.requests.filter((r) => r.path === "/families/ctlstore/mutations");
    assert.equal(beats.length, 2);
    assert.equal(beats[0].headers["ctlstore-writer"], "heartbeat");
    assert.equal(beats[0].headers["ctlstore-secret"], "hb-secret");
    assert.deepEqual(JSON.parse(beats[0].body), {
      mutations: [{
        table: "heartbeats",
        delete: false,
        values: { name: "heartbeat", value: "1700000000123456789" },
      }],
    });
    // Nanosecond values beyond 2^53 travel as exact decimal strings.
    assert.deepEqual(exec.state.rows.get("ctlstore.heartbeats/heartbeat"), {
      name: "heartbeat",
      value: "1700000015123456789",
    });
  } finally {
    await exec.server.shutdown();
  }
});

Deno.test("Heartbeat treats 409 'already exists' as done", async () => {
  const exec = fakeExecutive();
  try {
    exec.state.writers.set("heartbeat", "hb-secret");
    exec.state.families.add("ctlstore");
    exec.state.tables.add("ctlstore.heartbeats");
    const hb = new Heartbeat({
      executives: [exec.url],
      adminToken: "admin-t",
      writerSecret: "hb-secret",
    });
    await hb.beat();
    assert.ok(exec.state.rows.has("ctlstore.heartbeats/heartbeat"));
    const statuses = exec.requests.map((r) => r.path);
    assert.equal(statuses.filter((p) => p === "/families/ctlstore").length, 1);
  } finally {
    await exec.server.shutdown();
  }
});

Deno.test("Heartbeat fails over to the next executive and sets up again after a 404", async () => {
  const down = fakeExecutive({ down: true });
  const up = fakeExecutive();
  try {
    const hb = new Heartbeat({
      executives: [down.url, up.url],
      adminToken: "admin-t",
      writerSecret: "hb-secret",
    });
    await hb.beat();
    assert.ok(down.requests.length >= 1, "the first executive was not tried");
    assert.ok(up.state.rows.has("ctlstore.heartbeats/heartbeat"));

    // Someone dropped the table: the beat fails, the next one recreates it.
    up.state.tables.clear();
    up.state.rows.clear();
    await assert.rejects(hb.beat());
    await hb.beat();
    assert.ok(up.state.rows.has("ctlstore.heartbeats/heartbeat"));
  } finally {
    await down.server.shutdown();
    await up.server.shutdown();
  }
});

Deno.test("Heartbeat.run logs failures and keeps beating", async () => {
  const exec = fakeExecutive({ down: true });
  try {
    const hb = new Heartbeat({
      executives: [exec.url],
      adminToken: "admin-t",
      writerSecret: "hb-secret",
      intervalMs: 100,
      attempts: 1,
    });
    const running = hb.run();
    const waitFor = async (cond: () => boolean) => {
      const t0 = performance.now();
      while (!cond() && performance.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 10));
      assert.ok(cond(), "timed out");
    };
    await waitFor(() => hb.stats.failures >= 2);
    assert.equal(hb.stats.beats, 0);
    exec.state.down = false; // The cluster comes back: beats resume without a restart.
    await waitFor(() => hb.stats.beats >= 2);
    hb.stop();
    await running;
    assert.ok(exec.state.rows.has("ctlstore.heartbeats/heartbeat"));
    assert.match(hb.stats.lastError ?? "", /503|failed/);
  } finally {
    await exec.server.shutdown();
  }
});
