import assert from "node:assert/strict";
import { join } from "node:path";
import { createTestLdb, type TestLdb, type TestTable } from "../ldb/testing.ts";
import { createSidecarApp, openLazily, type SidecarOptions } from "./app.ts";

const USERS: TestTable = {
  family: "fam",
  table: "users",
  fields: [["org", "string"], ["id", "integer"], ["name", "text"], ["avatar", "binary"]],
  keyFields: ["org", "id"],
  rows: [
    { org: "acme", id: 1, name: "ann", avatar: "AAEC" },
    { org: "acme", id: 2, name: "bob", avatar: null },
    { org: "acme", id: 3, name: "cy", avatar: null },
    { org: "zed", id: 1, name: "zoe", avatar: null },
  ],
};

const BYTES: TestTable = {
  family: "fam",
  table: "blobs",
  fields: [["k", "bytestring"], ["v", "integer"]],
  keyFields: ["k"],
  rows: [{ k: btoa("\x00\xff"), v: 7 }, { k: btoa("text"), v: 8 }],
};

function appFor(ldb: TestLdb, overrides: Partial<SidecarOptions> = {}) {
  return createSidecarApp({
    ldb: { reader: () => ldb.reader },
    maxRows: 3,
    minSeqWaitMaxMs: 150,
    healthMaxLatencyMs: 60_000,
    ...overrides,
  });
}

function post(app: ReturnType<typeof appFor>, path: string, body: unknown) {
  return app.request(path, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
}

Deno.test("POST /get-row-by-key answers the row with blobs as base64", async () => {
  using ldb = createTestLdb([USERS]);
  const app = appFor(ldb);
  const res = await post(app, "/get-row-by-key/fam/users", {
    key: [{ value: "acme" }, { value: 1 }],
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { org: "acme", id: 1, name: "ann", avatar: "AAEC" });
});

Deno.test("a missing row is 404 with X-Ctlstore: Not Found; a missing table is 404", async () => {
  using ldb = createTestLdb([USERS]);
  const app = appFor(ldb);
  const res = await post(app, "/get-row-by-key/fam/users", {
    key: [{ value: "acme" }, { value: 99 }],
  });
  assert.equal(res.status, 404);
  assert.equal(res.headers.get("X-Ctlstore"), "Not Found");
  assert.equal((await res.json()).error.code, "not_found");
  const table = await post(app, "/get-row-by-key/fam/nope", { key: [{ value: 1 }] });
  assert.equal(table.status, 404);
  assert.equal((await table.json()).error.code, "table_not_found");
});

Deno.test("bytestring keys: {binary} as base64 bytes, {value} as UTF-8 text", async () => {
  using ldb = createTestLdb([BYTES]);
  const app = appFor(ldb);
  const bin = await post(app, "/get-row-by-key/fam/blobs", { key: [{ binary: btoa("\x00\xff") }] });
  assert.deepEqual(await bin.json(), { k: btoa("\x00\xff"), v: 7 });
  const text = await post(app, "/get-row-by-key/fam/blobs", { key: [{ value: "text" }] });
  assert.deepEqual(await text.json(), { k: btoa("text"), v: 8 });
});

Deno.test("bad bodies and keys are 400 with a JSON error naming the problem", async () => {
  using ldb = createTestLdb([USERS]);
  const app = appFor(ldb);
  for (
    const [body, pattern] of [
      ["not json", /not JSON/],
      [{ nokey: 1 }, /"key"/],
      [{ key: [{ value: true }, { value: 1 }] }, /key\[0\]/],
      [{ key: [{ value: "acme" }] }, /2 part/],
      [{ key: [{ value: 1 }, { value: 1 }] }, /must be a string/],
      [{ key: [{ binary: "***" }] }, /base64/],
    ] as const
  ) {
    const res = await post(app, "/get-row-by-key/fam/users", body);
    assert.equal(res.status, 400, JSON.stringify(body));
    const error = (await res.json()).error;
    assert.match(error.message, pattern);
    assert.ok(["bad_request", "bad_key"].includes(error.code));
  }
  const huge = await post(app, "/get-row-by-key/fam/users", "x".repeat(70_000));
  assert.equal(huge.status, 413);
});

Deno.test("POST /get-rows-by-key-prefix answers rows in key order; over max-rows is 416", async () => {
  using ldb = createTestLdb([USERS]);
  const app = appFor(ldb);
  const acme = await post(app, "/get-rows-by-key-prefix/fam/users", { key: [{ value: "acme" }] });
  assert.equal(acme.status, 200);
  assert.deepEqual((await acme.json()).map((r: { id: number }) => r.id), [1, 2, 3]);
  const zed = await post(app, "/get-rows-by-key-prefix/fam/users", { key: [{ value: "zed" }] });
  assert.deepEqual(await zed.json(), [{ org: "zed", id: 1, name: "zoe", avatar: null }]);
  const all = await post(app, "/get-rows-by-key-prefix/fam/users", { key: [] });
  assert.equal(all.status, 416);
  assert.equal((await all.json()).error.code, "too_many_rows");
});

Deno.test("GET /get-ledger-latency answers seconds since the last entry's leader time", async () => {
  using ldb = createTestLdb([USERS]);
  ldb.write([], Date.now() - 2_500);
  const res = await appFor(ldb).request("/get-ledger-latency");
  const body = await res.json();
  assert.equal(body.unit, "seconds");
  assert.ok(body.value >= 2.5 && body.value < 10, String(body.value));
});

Deno.test("?min_seq waits for the LDB to reach the seq, else 504", async () => {
  using ldb = createTestLdb([USERS]);
  const app = appFor(ldb);
  const pending = post(app, "/get-row-by-key/fam/users?min_seq=2", {
    key: [{ value: "new" }, { value: 1 }],
  });
  setTimeout(
    () => ldb.upsert("fam", "users", [{ org: "new", id: 1, name: "n", avatar: null }]),
    30,
  );
  const res = await pending;
  assert.equal(res.status, 200);
  assert.equal((await res.json()).name, "n");
  const late = await post(app, "/get-row-by-key/fam/users?min_seq=9", {
    key: [{ value: "new" }, { value: 1 }],
  });
  assert.equal(late.status, 504);
  assert.equal((await late.json()).error.code, "seq_timeout");
  const bad = await post(app, "/get-row-by-key/fam/users?min_seq=x", { key: [] });
  assert.equal(bad.status, 400);
});

Deno.test("a request made right after a commit sees it (the sidecar does not share snapshots)", async () => {
  using ldb = createTestLdb([USERS]);
  const source = openLazily(ldb.path);
  try {
    const app = appFor(ldb, { ldb: source });
    const key = { key: [{ value: "now" }, { value: 1 }] };
    for (let i = 0; i < 20; i++) {
      assert.equal((await post(app, "/get-row-by-key/fam/users", key)).status, 404);
      ldb.upsert("fam", "users", [{ org: "now", id: 1, name: `n${i}`, avatar: null }]);
      const res = await post(app, "/get-row-by-key/fam/users", key);
      assert.equal(res.status, 200, `round ${i}`);
      assert.equal((await res.json()).name, `n${i}`);
      ldb.write([{ op: "delete", family: "fam", table: "users", key: { org: "now", id: 1 } }]);
    }
  } finally {
    source.close();
  }
});

Deno.test("/ping, /healthcheck and /health report readability and staleness", async () => {
  using ldb = createTestLdb([USERS]);
  assert.equal((await appFor(ldb).request("/ping")).status, 200);
  assert.equal((await appFor(ldb).request("/healthcheck")).status, 200);
  const fresh = await appFor(ldb).request("/health");
  assert.equal(fresh.status, 200);
  assert.equal((await fresh.json()).seq, 1);
  ldb.write([], Date.now() - 120_000);
  const stale = await appFor(ldb).request("/health");
  assert.equal(stale.status, 503);
  assert.equal((await stale.json()).status, "stale");

  const missing = createSidecarApp({
    ldb: openLazily(join(Deno.makeTempDirSync(), "absent.db")),
    maxRows: 10,
    minSeqWaitMaxMs: 10,
    healthMaxLatencyMs: 1000,
  });
  assert.equal((await missing.request("/ping")).status, 500);
  const row = await missing.request("/get-row-by-key/fam/users", {
    method: "POST",
    body: JSON.stringify({ key: [{ value: "a" }] }),
  });
  assert.equal(row.status, 503);
  assert.equal((await row.json()).error.code, "ldb_unavailable");
});

Deno.test("/metrics has a request latency histogram by route", async () => {
  using ldb = createTestLdb([USERS]);
  const app = appFor(ldb);
  await post(app, "/get-row-by-key/fam/users", { key: [{ value: "acme" }, { value: 1 }] });
  const text = await (await app.request("/metrics")).text();
  assert.match(
    text,
    /ctl_sidecar_request_duration_seconds_count\{route="\/get-row-by-key\/:family\/:table",status="200"\} 1/,
  );
});
