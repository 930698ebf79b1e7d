/**
 * ctlstore compatibility: every executive route with ctlstore's request and response shapes,
 * every error case of the reference as a JSON 4xx that leaves all state as it was.
 */
import assert from "node:assert/strict";
import { ADMIN, assertError, type Harness, withHarness, WRITER } from "./harness.ts";

const row = (id: string, n: unknown = 1, note: unknown = null) => ({
  table: "users",
  values: { id, n, note },
});

/** Sends a request that must fail with `status`/`code` and change nothing. */
async function rejects(
  h: Harness,
  pending: () => Promise<import("./harness.ts").Reply>,
  status: number,
  code: string,
): Promise<void> {
  const before = h.state();
  assertError(await pending(), status, code);
  assert.deepEqual(h.state(), before, `state changed by a rejected request (${code})`);
}

Deno.test("families: create, exists, bad names, admin auth", async () => {
  await withHarness(async (h) => {
    const created = await h.ok(h.admin("POST", "/families/Family1"));
    assert.equal(typeof created.json.seq, "number");
    assert.deepEqual(h.deps.sor.families(), ["family1"]);
    await rejects(h, () => h.admin("POST", "/families/family1"), 409, "family_exists");
    for (const bad of ["ab", "abc-123", "1abc", "a__b", "abc_", "x".repeat(31)]) {
      await rejects(h, () => h.admin("POST", `/families/${bad}`), 400, "invalid_name");
    }
    await rejects(h, () => h.call("POST", "/families/other"), 401, "unauthorized");
    await rejects(
      h,
      () => h.call("POST", "/families/other", { headers: { authorization: "Bearer wrong" } }),
      401,
      "unauthorized",
    );
    assert.deepEqual((await h.ok(h.call("GET", "/v1/families"))).json, { families: ["family1"] });
  }, { standard: false });
});

Deno.test("tables: create and read schema in ctlstore's shape", async () => {
  await withHarness(async (h) => {
    const schema = await h.ok(h.call("GET", "/schema/table/fam/users"));
    assert.deepEqual(schema.json, {
      family: "fam",
      name: "users",
      fields: [["id", "string"], ["n", "integer"], ["note", "text"]],
      keyFields: ["id"],
    });
    await h.ok(h.admin("POST", "/families/fam/tables/all_types", {
      fields: [
        ["s", "string"],
        ["i", "integer"],
        ["d", "decimal"],
        ["t", "text"],
        ["b", "binary"],
        [
          "bs",
          "bytestring",
        ],
      ],
      keyFields: ["i", "bs", "s"],
    }));
    const family = await h.ok(h.call("GET", "/schema/family/fam"));
    assert.deepEqual(family.json.map((t: { name: string }) => t.name), ["all_types", "users"]);
    assert.deepEqual(family.json[0].keyFields, ["i", "bs", "s"]);
    assertError(await h.call("GET", "/schema/table/fam/nope"), 404, "table_not_found");
    assertError(await h.call("GET", "/schema/table/nope/users"), 404, "family_not_found");
    assertError(await h.call("GET", "/schema/family/nope"), 404, "family_not_found");
  });
});

Deno.test("tables: each bad definition is a 4xx that creates nothing", async () => {
  await withHarness(async (h) => {
    const create = (json: unknown, path = "/families/fam/tables/tbl1") => () =>
      h.admin("POST", path, json);
    await rejects(
      h,
      create({ fields: [["id", "uuid"]], keyFields: ["id"] }),
      400,
      "invalid_field_type",
    );
    await rejects(h, create({ fields: [["id"]], keyFields: ["id"] }), 400, "bad_request");
    await rejects(h, create({ fields: [["id", "string"]], keyFields: [] }), 400, "bad_request");
    await rejects(h, create({ fields: [["id", "string"]] }), 400, "bad_request");
    await rejects(h, create({ fields: [["id", "string"]], keyFields: ["x"] }), 400, "bad_request");
    await rejects(h, create({ fields: [["d", "decimal"]], keyFields: ["d"] }), 400, "bad_request");
    await rejects(h, create({ fields: [["b", "binary"]], keyFields: ["b"] }), 400, "bad_request");
    await rejects(
      h,
      create({ fields: [["i-d", "string"]], keyFields: ["i-d"] }),
      400,
      "invalid_name",
    );
    await rejects(
      h,
      create({ fields: [["id", "string"]], keyFields: ["id"], extra: 1 }),
      400,
      "unknown_field",
    );
    await rejects(
      h,
      create({ fields: [["id", "string"]], keyFields: ["id"] }, "/families/nope/tables/tbl1"),
      404,
      "family_not_found",
    );
    await rejects(
      h,
      create({ fields: [["id", "string"]], keyFields: ["id"] }, "/families/fam/tables/users"),
      409,
      "table_exists",
    );
    await rejects(
      h,
      create({ fields: [["id", "string"]], keyFields: ["id"] }, "/families/fam/tables/a__b"),
      400,
      "invalid_name",
    );
    await rejects(
      h,
      () => h.call("POST", "/families/fam/tables/tbl1", { body: "{nope", headers: ADMIN }),
      400,
      "invalid_json",
    );
  });
});

Deno.test("tables: add fields (PUT), nullable and appended", async () => {
  await withHarness(async (h) => {
    await h.ok(h.admin("PUT", "/families/fam/tables/users", { fields: [["extra", "decimal"]] }));
    const schema = (await h.ok(h.call("GET", "/schema/table/fam/users"))).json;
    assert.deepEqual(schema.fields.at(-1), ["extra", "decimal"]);
    await h.ok(
      h.mutate("fam", {
        mutations: [{ table: "users", values: { id: "a", n: 1, note: null, extra: 2.5 } }],
      }),
    );
    const put = (path: string, json: unknown) => () => h.admin("PUT", path, json);
    await rejects(
      h,
      put("/families/fam/tables/users", { fields: [["n", "integer"]] }),
      409,
      "field_exists",
    );
    await rejects(
      h,
      put("/families/fam/tables/nope", { fields: [["x", "integer"]] }),
      404,
      "table_not_found",
    );
    await rejects(
      h,
      put("/families/nope/tables/users", { fields: [["x", "integer"]] }),
      404,
      "family_not_found",
    );
    await rejects(
      h,
      put("/families/fam/tables/users", { fields: [["x", "blob"]] }),
      400,
      "invalid_field_type",
    );
  });
});

Deno.test("POST /tables creates many tables atomically", async () => {
  await withHarness(async (h) => {
    const def = (family: string, name: string) => ({
      family,
      name,
      fields: [["id", "integer"]],
      keyFields: ["id"],
    });
    await rejects(
      h,
      () => h.admin("POST", "/tables", [def("fam", "one"), def("nope", "two")]),
      404,
      "family_not_found",
    );
    await rejects(
      h,
      () => h.admin("POST", "/tables", [def("fam", "one"), def("fam", "users")]),
      409,
      "table_exists",
    );
    assert.equal(h.deps.sor.tableSchema("fam", "one"), undefined);
    await rejects(h, () => h.admin("POST", "/tables", []), 400, "bad_request");
    const created = await h.ok(h.admin("POST", "/tables", [def("fam", "one"), def("fam", "two")]));
    const entry = h.deps.sor.ledger(created.json.seq - 1, 1)[0];
    assert.deepEqual(entry.ops.map((o) => o.op), ["create_table", "create_table"]);
  });
});

Deno.test("writers: register is idempotent for the same secret, 409 for another", async () => {
  await withHarness(async (h) => {
    await h.ok(h.call("POST", "/writers/writer1", { body: "secret1", headers: ADMIN }));
    await rejects(
      h,
      () => h.call("POST", "/writers/writer1", { body: "other", headers: ADMIN }),
      409,
      "writer_exists",
    );
    await rejects(
      h,
      () => h.call("POST", "/writers/ab", { body: "secret", headers: ADMIN }),
      400,
      "invalid_name",
    );
    await rejects(
      h,
      () => h.call("POST", "/writers/writer2", { body: "s", headers: ADMIN }),
      400,
      "bad_request",
    );
    await rejects(
      h,
      () => h.call("POST", "/writers/writer2", { body: "secret" }),
      401,
      "unauthorized",
    );
    await h.ok(h.call("POST", "/writers/writer2", { body: "secret2", headers: ADMIN }));
    assert.deepEqual(h.deps.sor.writers(), ["writer1", "writer2"]);
  });
});

Deno.test("cookies: raw bytes, set unconditionally, 404 for unknown writer or wrong secret", async () => {
  await withHarness(async (h) => {
    const empty = await h.ok(h.call("GET", "/cookie", { headers: WRITER }));
    assert.equal(empty.text, "");
    const cookie = new Uint8Array([0, 1, 2, 255, 10]);
    await h.ok(h.call("POST", "/cookie", { body: cookie, headers: WRITER }));
    const res = await h.app.request("/cookie", { headers: WRITER });
    assert.equal(res.status, 200);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), cookie);
    assertError(
      await h.call("GET", "/cookie", { headers: { ...WRITER, "ctlstore-secret": "wrong" } }),
      404,
      "writer_not_found",
    );
    assertError(
      await h.call("GET", "/cookie", { headers: { ...WRITER, "ctlstore-writer": "nobody" } }),
      404,
      "writer_not_found",
    );
    assertError(await h.call("GET", "/cookie"), 401, "unauthorized");
    await rejects(
      h,
      () => h.call("POST", "/cookie", { body: new Uint8Array(1025), headers: WRITER }),
      400,
      "bad_request",
    );
  });
});

Deno.test("mutations: an atomic batch returns its ledger seq", async () => {
  await withHarness(async (h) => {
    const reply = await h.ok(
      h.mutate("fam", { mutations: [row("a", 1, "x"), row("b", "9223372036854775807")] }),
    );
    assert.deepEqual(reply.json, { seq: h.deps.sor.lastSeq() });
    const entry = h.deps.sor.ledger(reply.json.seq - 1, 1)[0];
    assert.equal(entry.family, "fam");
    assert.deepEqual(entry.ops, [
      { op: "upsert", family: "fam", table: "users", values: { id: "a", n: 1, note: "x" } },
      {
        op: "upsert",
        family: "fam",
        table: "users",
        values: { id: "b", n: "9223372036854775807", note: null },
      },
    ]);
    assert.equal(entry.ts, h.clock);
    const del = await h.ok(
      h.mutate("fam", { mutations: [{ table: "users", delete: true, values: { id: "a" } }] }),
    );
    assert.equal(del.json.seq, reply.json.seq + 1);
    assert.equal(h.deps.sor.checksums()[0].rows, 1);
    // Unicode survives as sent.
    await h.ok(h.mutate("fam", { mutations: [row("ключ-😀", 2, "naïve ☃ text")] }));
    const last = h.deps.sor.ledger(h.deps.sor.lastSeq() - 1, 1)[0];
    assert.deepEqual(last.ops[0], {
      op: "upsert",
      family: "fam",
      table: "users",
      values: { id: "ключ-😀", n: 2, note: "naïve ☃ text" },
    });
  });
});

Deno.test("mutations: each bad request is a 4xx that leaves all state as it was", async () => {
  await withHarness(async (h) => {
    await h.ok(h.admin("POST", "/families/fam/tables/all_types", {
      fields: [
        ["s", "string"],
        ["i", "integer"],
        ["d", "decimal"],
        ["t", "text"],
        ["b", "binary"],
        [
          "bs",
          "bytestring",
        ],
      ],
      keyFields: ["s"],
    }));
    await h.ok(h.mutate("fam", { mutations: [row("seed")] }));
    const good = { s: "k", i: 1, d: 1.5, t: "t", b: "AA==", bs: "AQ==" };
    await h.ok(h.mutate("fam", { mutations: [{ table: "all_types", values: good }] }));
    const m = (mutations: unknown) => () => h.mutate("fam", { mutations });
    const typed = (values: Record<string, unknown>) =>
      m([{ table: "all_types", values: { ...good, ...values } }]);

    await rejects(h, m([{ table: "users", values: { id: "a", n: 1 } }]), 400, "missing_field");
    await rejects(
      h,
      m([row("a"), { table: "users", values: { id: "b", n: 1, note: null, zzz: 1 } }]),
      400,
      "unknown_field",
    );
    await rejects(h, m([row(null as unknown as string)]), 400, "invalid_value");
    // A wrong type for every field type.
    for (
      const values of [{ s: 5 }, { i: "x" }, { i: 1.5 }, { i: true }, { d: "1.5" }, { t: {} }, {
        b: "!!",
      }, { bs: [1] }]
    ) {
      await rejects(h, typed(values), 400, "invalid_value");
    }
    // Oversize values.
    await rejects(h, typed({ s: "x".repeat(192) }), 400, "invalid_value");
    await rejects(h, typed({ bs: btoa("x".repeat(256)) }), 400, "invalid_value");
    await rejects(h, typed({ t: "x".repeat(512 * 1024 + 1) }), 400, "invalid_value");
    // NUL, lone surrogates, integers beyond int64 or imprecise numbers.
    await rejects(h, typed({ s: "a\u0000b" }), 400, "invalid_value");
    await rejects(h, typed({ t: "bad \ud800 surrogate" }), 400, "invalid_value");
    await rejects(h, typed({ i: "9223372036854775808" }), 400, "invalid_value");
    await rejects(h, typed({ i: 2 ** 53 + 2 }), 400, "invalid_value");
    await rejects(h, typed({ d: "NaN" }), 400, "invalid_value");
    // Batch rules.
    await rejects(
      h,
      m(Array.from({ length: 101 }, (_, i) => row(`r${i}`))),
      400,
      "too_many_mutations",
    );
    await rejects(h, m([row("dup"), row("dup", 2)]), 400, "duplicate_key");
    await rejects(h, m([row("a"), { table: "nope", values: { id: "x" } }]), 404, "table_not_found");
    await rejects(
      h,
      m([{ table: "users", delete: true, values: { id: "a", n: 1 } }]),
      400,
      "bad_request",
    );
    await rejects(h, () => h.mutate("nope", { mutations: [row("a")] }), 404, "family_not_found");
    await rejects(
      h,
      () => h.mutate("fam", { mutations: [row("a")], extra: true }),
      400,
      "unknown_field",
    );
    await rejects(h, () => h.mutate("fam", { mutations: "nope" }), 400, "bad_request");
    await rejects(h, () => h.mutate("fam", [row("a")]), 400, "bad_request");
    await rejects(
      h,
      () => h.call("POST", "/families/fam/mutations", { body: '{"mutations": [', headers: WRITER }),
      400,
      "invalid_json",
    );
    await rejects(
      h,
      () =>
        h.call("POST", "/families/fam/mutations", {
          body: new Uint8Array([0xff, 0xfe]),
          headers: WRITER,
        }),
      400,
      "invalid_json",
    );
    // Credentials.
    await rejects(h, () => h.mutate("fam", { mutations: [row("a")] }, {}), 401, "unauthorized");
    await rejects(
      h,
      () => h.mutate("fam", { mutations: [row("a")] }, { ...WRITER, "ctlstore-secret": "nope" }),
      404,
      "writer_not_found",
    );
    // 100 mutations is fine.
    await h.ok(h.mutate("fam", { mutations: Array.from({ length: 100 }, (_, i) => row(`r${i}`)) }));
  });
});

Deno.test("mutations: a body over 1 MiB is 413, by Content-Length or by the bytes read", async () => {
  await withHarness(async (h) => {
    const big = JSON.stringify({ mutations: [row("a", 1, "x".repeat(1024 * 1024))] });
    await rejects(
      h,
      () => h.call("POST", "/families/fam/mutations", { body: big, headers: WRITER }),
      413,
      "body_too_large",
    );
    // A lying Content-Length does not get past the limit: the bytes are counted as read.
    const stream = () =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 20; i++) controller.enqueue(new Uint8Array(64 * 1024).fill(32));
          controller.close();
        },
      });
    await rejects(
      h,
      () =>
        h.call("POST", "/families/fam/mutations", {
          body: stream(),
          headers: { ...WRITER, "content-length": "10" },
        }),
      413,
      "body_too_large",
    );
    await rejects(
      h,
      () =>
        h.call("POST", "/families/fam/mutations", {
          body: "{}",
          headers: { ...WRITER, "content-length": "2000000" },
        }),
      413,
      "body_too_large",
    );
  });
});

Deno.test("mutations: check_cookie conflict is 409 cookie_conflict and applies nothing", async () => {
  await withHarness(async (h) => {
    await h.ok(h.mutate("fam", { cookie: btoa("c1"), mutations: [row("a")] }));
    assert.equal((await h.call("GET", "/cookie", { headers: WRITER })).text, "c1");
    await rejects(
      h,
      () =>
        h.mutate("fam", { check_cookie: btoa("c0"), cookie: btoa("c2"), mutations: [row("b")] }),
      409,
      "cookie_conflict",
    );
    await h.ok(
      h.mutate("fam", { check_cookie: btoa("c1"), cookie: btoa("c2"), mutations: [row("b")] }),
    );
    assert.equal((await h.call("GET", "/cookie", { headers: WRITER })).text, "c2");
    await rejects(h, () => h.mutate("fam", { cookie: "%%%", mutations: [] }), 400, "invalid_value");
  });
});

Deno.test("limits: table limits in ctlstore's shape, 507 over max size", async () => {
  await withHarness(async (h) => {
    const defaults = await h.ok(h.admin("GET", "/limits/tables"));
    assert.deepEqual(defaults.json, {
      global: { "max-size": 104857600, "warn-size": 52428800 },
      tables: [],
    });
    await h.ok(h.admin("POST", "/limits/tables/fam/users", { "max-size": 200, "warn-size": 100 }));
    assert.deepEqual((await h.ok(h.admin("GET", "/limits/tables"))).json.tables, [
      { family: "fam", table: "users", "max-size": 200, "warn-size": 100 },
    ]);
    assert.deepEqual((await h.ok(h.admin("GET", "/limits/tables/fam/users"))).json, {
      family: "fam",
      table: "users",
      "max-size": 200,
      "warn-size": 100,
    });
    await rejects(
      h,
      () => h.admin("POST", "/limits/tables/fam/users", { "max-size": 10, "warn-size": 100 }),
      400,
      "bad_request",
    );
    await rejects(
      h,
      () => h.admin("POST", "/limits/tables/fam/nope", { "max-size": 10, "warn-size": 1 }),
      404,
      "table_not_found",
    );
    await rejects(h, () => h.call("GET", "/limits/tables"), 401, "unauthorized");
    const warned = await h.ok(h.mutate("fam", { mutations: [row("a", 1, "x".repeat(150))] }));
    assert.equal(warned.json.warnings.length, 1);
    assert.match(warned.json.warnings[0], /warn size of 100/);
    await rejects(
      h,
      () => h.mutate("fam", { mutations: [row("b", 1, "x".repeat(100))] }),
      507,
      "table_size_limit_exceeded",
    );
    await h.ok(h.admin("DELETE", "/limits/tables/fam/users"));
    assertError(await h.admin("GET", "/limits/tables/fam/users"), 404, "limit_not_found");
    await h.ok(h.mutate("fam", { mutations: [row("b", 1, "x".repeat(100))] }));
  });
});

Deno.test("limits: writer rate limits stored per minute, 429 over the rate", async () => {
  await withHarness(async (h) => {
    const defaults = await h.ok(h.admin("GET", "/limits/writers"));
    assert.deepEqual(defaults.json, { global: { amount: 1000, period: "1m" }, writers: [] });
    await h.ok(h.admin("POST", "/limits/writers/writer1", { amount: 170, period: "1s" }));
    assert.deepEqual((await h.ok(h.admin("GET", "/limits/writers"))).json.writers, [
      { writer: "writer1", "rate-limit": { amount: 10200, period: "1m" } },
    ]);
    await h.ok(h.admin("POST", "/limits/writers/writer1", { amount: 3, period: "1m" }));
    assert.deepEqual((await h.ok(h.admin("GET", "/limits/writers/writer1"))).json, {
      writer: "writer1",
      "rate-limit": { amount: 3, period: "1m" },
    });
    await rejects(
      h,
      () => h.admin("POST", "/limits/writers/writer1", { amount: 1, period: "1d" }),
      400,
      "bad_request",
    );
    await rejects(
      h,
      () => h.admin("POST", "/limits/writers/nobody", { amount: 1, period: "1m" }),
      404,
      "writer_not_found",
    );
    h.clock = 1_700_000_000_000 - (1_700_000_000_000 % 60_000) + 1000;
    await h.ok(h.mutate("fam", { mutations: [row("a"), row("b")] }));
    await rejects(
      h,
      () => h.mutate("fam", { mutations: [row("c"), row("d")] }),
      429,
      "rate_limited",
    );
    h.clock += 60_000;
    await h.ok(h.mutate("fam", { mutations: [row("c"), row("d")] }));
    await h.ok(h.admin("DELETE", "/limits/writers/writer1"));
    assertError(await h.admin("GET", "/limits/writers/writer1"), 404, "limit_not_found");
  });
});

Deno.test("destructive changes disabled: drop and clear are 400 and change nothing", async () => {
  await withHarness(async (h) => {
    await h.ok(h.mutate("fam", { mutations: [row("a")] }));
    await rejects(
      h,
      () => h.admin("DELETE", "/families/fam/tables/users"),
      400,
      "destructive_changes_disabled",
    );
    await rejects(
      h,
      () => h.admin("DELETE", "/clear-rows/families/fam/tables/users"),
      400,
      "destructive_changes_disabled",
    );
    await rejects(
      h,
      () => h.admin("DELETE", "/clear-rows/families/fam"),
      400,
      "destructive_changes_disabled",
    );
  }, { destructiveChanges: false });
});

Deno.test("destructive changes enabled: drop, clear a table, clear a family atomically", async () => {
  await withHarness(async (h) => {
    await h.ok(
      h.admin("POST", "/families/fam/tables/other", {
        fields: [["k", "integer"]],
        keyFields: ["k"],
      }),
    );
    await h.ok(h.mutate("fam", { mutations: [row("a"), { table: "other", values: { k: 1 } }] }));
    await h.ok(h.admin("DELETE", "/clear-rows/families/fam/tables/other"));
    assert.deepEqual(h.deps.sor.checksums().map((c) => [c.table, c.rows]), [["other", 0], [
      "users",
      1,
    ]]);
    await h.ok(h.mutate("fam", { mutations: [{ table: "other", values: { k: 2 } }] }));
    const cleared = await h.ok(h.admin("DELETE", "/clear-rows/families/fam"));
    assert.equal(h.deps.sor.ledger(cleared.json.seq - 1, 1)[0].ops.length, 2);
    assert.deepEqual(h.deps.sor.checksums().map((c) => c.rows), [0, 0]);
    await h.ok(h.admin("DELETE", "/families/fam/tables/other"));
    assert.equal(h.deps.sor.tableSchema("fam", "other"), undefined);
    await rejects(h, () => h.admin("DELETE", "/families/fam/tables/other"), 404, "table_not_found");
    await rejects(h, () => h.admin("DELETE", "/clear-rows/families/nope"), 404, "family_not_found");
  });
});

Deno.test("Idempotency-Key: a retry returns the first result and applies nothing twice", async () => {
  await withHarness(async (h) => {
    const headers = { ...WRITER, "idempotency-key": "batch-42" };
    const body = { mutations: [row("a")] };
    const first = await h.ok(h.mutate("fam", body, headers));
    const lastSeq = h.deps.sor.lastSeq();
    h.clock += 5000;
    const retry = await h.ok(h.mutate("fam", body, headers));
    assert.deepEqual(retry.json, first.json);
    assert.equal(h.deps.sor.lastSeq(), lastSeq);
    await rejects(
      h,
      () => h.mutate("fam", { mutations: [row("b")] }, headers),
      422,
      "idempotency_key_reused",
    );
    // Keys are per principal: another writer's identical key is independent.
    await h.ok(h.call("POST", "/writers/writer2", { body: "secret2", headers: ADMIN }));
    const other = {
      "ctlstore-writer": "writer2",
      "ctlstore-secret": "secret2",
      "idempotency-key": "batch-42",
    };
    const second = await h.ok(h.mutate("fam", { mutations: [row("b")] }, other));
    assert.equal(second.json.seq, lastSeq + 1);
    await rejects(
      h,
      () => h.mutate("fam", body, { ...WRITER, "idempotency-key": "" }),
      400,
      "bad_request",
    );
  });
});

Deno.test("GET /status tells the truth; unknown routes are JSON 404s", async () => {
  await withHarness(async (h) => {
    const status = await h.ok(h.call("GET", "/status"));
    assert.equal(status.json.healthy, true);
    assert.equal(status.json.lastSeq, h.deps.sor.lastSeq());
    assertError(await h.call("GET", "/nope"), 404, "not_found");
  });
});
