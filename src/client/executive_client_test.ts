import assert from "node:assert/strict";
import { createExecutiveApp } from "../executive/app.ts";
import { LOCAL_ADMIN_TOKEN, LocalExecutive } from "../executive/local.ts";
import {
  ExecutiveClient,
  ExecutiveHttpError,
  ExecutiveUnavailableError,
} from "./executive_client.ts";

/** A local executive reached through a programmable fake network (no sockets). */
function cluster(
  network: (req: Request, app: (r: Request) => Promise<Response>) => Promise<Response>,
) {
  const deps = new LocalExecutive();
  const app = createExecutiveApp(deps);
  const fetchFn =
    ((input: string, init: RequestInit) =>
      network(new Request(input, init), async (r) => await app.request(r))) as typeof fetch;
  const client = (urls = ["http://e1:7001"]) =>
    new ExecutiveClient({
      urls,
      adminToken: LOCAL_ADMIN_TOKEN,
      writer: { name: "writer1", secret: "secret1" },
      retryDelayMs: 1,
      attempts: 4,
      fetch: fetchFn,
    });
  return { deps, client };
}

Deno.test("the client drives every admin and writer route with typed results", async () => {
  const { deps, client } = cluster((req, app) => app(req));
  try {
    const c = client();
    assert.equal((await c.createFamily("fam")).seq, 1);
    await c.createTable("fam", "users", [["id", "string"], ["n", "integer"]], ["id"]);
    await c.createTables([{
      family: "fam",
      name: "other",
      fields: [["k", "integer"]],
      keyFields: ["k"],
    }]);
    await c.addFields("fam", "users", [["note", "text"]]);
    await c.registerWriter("writer1", "secret1");
    const { seq } = await c.mutate("fam", [{
      table: "users",
      values: { id: "a", n: 1, note: null },
    }], {
      cookie: new TextEncoder().encode("c1"),
    });
    assert.equal(seq, deps.sor.lastSeq());
    assert.deepEqual(new TextDecoder().decode(await c.getCookie()), "c1");
    await c.setCookie(new Uint8Array([9]));
    assert.deepEqual(await c.getCookie(), new Uint8Array([9]));
    assert.deepEqual((await c.tableSchema("fam", "users")).fields.map((f) => f[0]), [
      "id",
      "n",
      "note",
    ]);
    assert.deepEqual((await c.familySchema("fam")).map((t) => t.name), ["other", "users"]);
    assert.deepEqual(await c.families(), ["fam"]);
    await c.setTableLimit("fam", "users", 1000, 500);
    assert.equal((await c.tableLimits()).tables[0]["max-size"], 1000);
    await c.setWriterLimit("writer1", 2, "1s");
    assert.equal((await c.writerLimits()).writers[0]["rate-limit"].amount, 120);
    await c.deleteWriterLimit("writer1");
    await c.deleteTableLimit("fam", "users");
    assert.equal((await c.ledger(0)).lastSeq, deps.sor.lastSeq());
    assert.equal((await c.status()).healthy, true);
    await c.clearTable("fam", "users");
    await c.clearFamily("fam");
    await c.dropTable("fam", "other");
    await assert.rejects(
      () => c.createFamily("fam"),
      (e) => e instanceof ExecutiveHttpError && e.status === 409 && e.code === "family_exists",
    );
  } finally {
    deps.close();
  }
});

Deno.test("the client moves to the next executive on connection errors and 503", async () => {
  const tried: string[] = [];
  const { deps, client } = cluster((req, app) => {
    const host = new URL(req.url).host;
    tried.push(host);
    if (host === "down:7001") return Promise.reject(new TypeError("connection refused"));
    if (host === "follower:7001") {
      return Promise.resolve(
        Response.json({ error: { code: "no_leader", message: "x" } }, {
          status: 503,
          headers: { "retry-after": "0" },
        }),
      );
    }
    return app(req);
  });
  try {
    const c = client(["http://down:7001", "http://follower:7001", "http://leader:7001"]);
    await c.createFamily("fam");
    assert.deepEqual(tried, ["down:7001", "follower:7001", "leader:7001"]);
    assert.deepEqual(deps.sor.families(), ["fam"]);
    const dead = client(["http://down:7001"]);
    await assert.rejects(() => dead.families(), ExecutiveUnavailableError);
  } finally {
    deps.close();
  }
});

Deno.test("a retry after a lost reply does not apply a write twice", async () => {
  let drop = true;
  const { deps, client } = cluster(async (req, app) => {
    const res = await app(req);
    if (req.method !== "GET" && drop) {
      drop = false;
      throw new TypeError("connection reset after the request was applied");
    }
    return res;
  });
  try {
    const c = client();
    const { seq } = await c.createFamily("fam");
    assert.equal(seq, 1);
    assert.equal(deps.sor.lastSeq(), 1);
    assert.equal(deps.sor.ledger(0, 10).length, 1);
  } finally {
    deps.close();
  }
});
