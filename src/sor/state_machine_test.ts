import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  encodeCommand,
  PreparedCommand,
  type SorCommand,
  type SorCommandBody,
} from "./commands.ts";
import { TestSor } from "./testing.ts";
import { type CommittedEntry, SorStateMachine } from "./state_machine.ts";
import { tableChecksums } from "./checksum.ts";

const USERS: SorCommandBody = {
  type: "create_tables",
  tables: [{
    family: "fam",
    name: "users",
    fields: [["id", "string"], ["n", "integer"], ["blob", "binary"]],
    keyFields: ["id"],
  }],
};

function setup(): TestSor {
  const t = new TestSor();
  t.ok({ type: "create_family", family: "fam" });
  t.ok(USERS);
  t.registerWriter("writer1", "secret1");
  return t;
}

function upsert(id: string, n: number | string = 1, blob: string | null = null) {
  return { table: "users", delete: false, values: { id, n, blob } };
}

function mutate(mutations: unknown[], extra: Partial<Record<string, string>> = {}): SorCommandBody {
  return {
    type: "mutate",
    family: "fam",
    writer: "writer1",
    mutations: mutations as never,
    ...extra,
  };
}

function rows(t: TestSor): unknown[] {
  t.sor.flush(); // another connection sees committed batches
  const db = new DatabaseSync(t.path, { readOnly: true });
  try {
    const stmt = db.prepare("SELECT id, n FROM fam___users ORDER BY id");
    stmt.setReadBigInts(true);
    return stmt.all().map((r) => ({ ...r, n: String(r.n) }));
  } finally {
    db.close();
  }
}

/** The ids of the users rows, in key order. */
function rowIds(t: TestSor): string[] {
  return rows(t).map((r) => (r as { id: string }).id);
}

Deno.test("each schema or data change appends exactly one ledger entry with the next seq", () => {
  const t = setup();
  try {
    const seq = t.ok(mutate([upsert("a"), upsert("b", "9007199254740993")]));
    assert.equal(seq, 3);
    const ledger = t.sor.ledger(0, 100);
    assert.deepEqual(ledger.map((e) => e.seq), [1, 2, 3]);
    assert.deepEqual(ledger.map((e) => e.ops.map((o) => o.op)), [
      ["create_family"],
      ["create_table"],
      ["upsert", "upsert"],
    ]);
    assert.equal(ledger[2].ts, t.ts);
    assert.deepEqual(rows(t), [{ id: "a", n: "1" }, { id: "b", n: "9007199254740993" }]);
    assert.equal(t.sor.lastSeq(), 3);
    assert.deepEqual(t.sor.ledger(2, 100).map((e) => e.seq), [3]);
  } finally {
    t.dispose();
  }
});

Deno.test("a failed command changes nothing but the applied index", () => {
  const t = setup();
  try {
    t.ok(mutate([upsert("a")]));
    const before = {
      ledger: t.sor.ledger(0, 100),
      sums: t.sor.checksums(),
      index: t.sor.appliedIndex(),
      usage: t.sor.writerUsage("writer1"),
      size: t.sor.tableSizeBytes("fam", "users"),
    };
    const failures: [SorCommandBody, string][] = [
      [{ type: "create_family", family: "fam" }, "family_exists"],
      [{ type: "create_family", family: "a__b" }, "invalid_name"],
      [USERS, "table_exists"],
      [
        mutate([upsert("z"), { table: "users", values: { id: "y", n: 1.5, blob: null } }]),
        "invalid_value",
      ],
      [mutate([upsert("z"), upsert("z")]), "duplicate_key"],
      // Refused after its sizes and usage were worked out, before anything was written.
      [
        { ...mutate([upsert("z")]), cookieBase64: "not base64!" } as SorCommandBody,
        "invalid_value",
      ],
      [mutate([upsert("z"), { table: "nope", values: {} }]), "table_not_found"],
      [{ ...mutate([upsert("z")]), writer: "nobody" } as SorCommandBody, "writer_not_found"],
      [
        { type: "add_fields", family: "fam", table: "users", fields: [["n", "integer"]] },
        "field_exists",
      ],
      [{ type: "drop_table", family: "fam", table: "nope" }, "table_not_found"],
    ];
    for (const [cmd, code] of failures) {
      const result = t.apply(cmd);
      assert.equal(result.ok, false, JSON.stringify(cmd));
      if (!result.ok) assert.equal(result.error.code, code, JSON.stringify(result.error));
    }
    assert.deepEqual(t.sor.ledger(0, 100), before.ledger);
    assert.deepEqual(t.sor.checksums(), before.sums);
    assert.equal(t.sor.appliedIndex(), before.index + failures.length);
    assert.deepEqual(rows(t), [{ id: "a", n: "1" }]);
    assert.deepEqual(t.sor.writerUsage("writer1"), before.usage);
    assert.equal(t.sor.tableSizeBytes("fam", "users"), before.size);
    t.reopen();
    assert.deepEqual(t.sor.writerUsage("writer1"), before.usage, "nor in the file");
    assert.equal(t.sor.tableSizeBytes("fam", "users"), before.size);
    // A corrupt payload is a deterministic failure too.
    const bad = t.sor.apply(t.sor.appliedIndex() + 1, new TextEncoder().encode("{not json"));
    assert.equal(bad.ok, false);
    assert.equal(t.sor.lastSeq(), 3);
  } finally {
    t.dispose();
  }
});

Deno.test("batch table creation is atomic: one bad table creates none", () => {
  const t = setup();
  try {
    const result = t.apply({
      type: "create_tables",
      tables: [
        { family: "fam", name: "good", fields: [["id", "string"]], keyFields: ["id"] },
        { family: "fam", name: "users", fields: [["id", "string"]], keyFields: ["id"] },
      ],
    });
    assert.equal(result.ok, false);
    assert.equal(t.sor.tableSchema("fam", "good"), undefined);
    assert.deepEqual(t.sor.checksums().map((c) => c.table), ["users"]);
    // The applier's cache must not believe in the rolled-back table either.
    t.ok({
      type: "create_tables",
      tables: [{ family: "fam", name: "good", fields: [["k", "integer"]], keyFields: ["k"] }],
    });
    assert.deepEqual(t.sor.tableSchema("fam", "good")?.fields, [["k", "integer"]]);
  } finally {
    t.dispose();
  }
});

Deno.test("check_cookie makes a batch conditional; the cookie is stored with the batch", () => {
  const t = setup();
  try {
    t.ok(mutate([upsert("a")], { cookieBase64: btoa("offset-1") }));
    assert.equal(new TextDecoder().decode(t.sor.cookie("writer1")), "offset-1");
    const conflict = t.apply(
      mutate([upsert("b")], {
        checkCookieBase64: btoa("offset-0"),
        cookieBase64: btoa("offset-2"),
      }),
    );
    assert.equal(conflict.ok ? "" : conflict.error.code, "cookie_conflict");
    assert.equal(new TextDecoder().decode(t.sor.cookie("writer1")), "offset-1");
    assert.deepEqual(rows(t), [{ id: "a", n: "1" }]);
    t.ok(
      mutate([upsert("b")], {
        checkCookieBase64: btoa("offset-1"),
        cookieBase64: btoa("offset-2"),
      }),
    );
    assert.equal(new TextDecoder().decode(t.sor.cookie("writer1")), "offset-2");
    assert.equal(t.sor.cookie("nobody"), undefined);
  } finally {
    t.dispose();
  }
});

Deno.test("the writer rate limit is a fixed one-minute window of the leader's ts", () => {
  const t = setup();
  try {
    t.ok({ type: "set_writer_limit", writer: "writer1", rowsPerMinute: 5 });
    t.ts = 1_700_000_040_000 + 40_000; // 40 s into a minute
    t.ok(mutate([upsert("a"), upsert("b"), upsert("c")]));
    const over = t.apply(mutate([upsert("d"), upsert("e"), upsert("f")]));
    assert.equal(over.ok ? "" : over.error.code, "rate_limited");
    assert.equal(over.ok ? 0 : over.error.status, 429);
    t.ok(mutate([upsert("d"), upsert("e")]));
    t.ts += 20_000; // the next minute starts
    t.ok(mutate([upsert("f"), upsert("g"), upsert("h")]));
    assert.equal(rows(t).length, 8);
  } finally {
    t.dispose();
  }
});

Deno.test("a write that grows a table past its max size gets 507; deletes still shrink it", () => {
  const t = setup();
  try {
    t.ok({
      type: "set_table_limit",
      family: "fam",
      table: "users",
      maxSizeBytes: 100,
      warnSizeBytes: 50,
    });
    t.ok(mutate([upsert("a", 1, btoa("x".repeat(40)))]));
    assert.equal(t.sor.tableSizeBytes("fam", "users"), 1 + 8 + 40);
    const full = t.apply(mutate([upsert("b", 1, btoa("x".repeat(60)))]));
    assert.equal(full.ok ? 0 : full.error.status, 507);
    assert.equal(t.sor.tableSizeBytes("fam", "users"), 49);
    // Replacing a row counts its new size, not both.
    t.ok(mutate([upsert("a", 1, btoa("x".repeat(80)))]));
    assert.equal(t.sor.tableSizeBytes("fam", "users"), 89);
    t.ok(mutate([{ table: "users", delete: true, values: { id: "a" } }]));
    assert.equal(t.sor.tableSizeBytes("fam", "users"), 0);
    // Text counts its UTF-8 bytes, on the way in and on the way out.
    t.ok(mutate([upsert("é€", 1)]));
    assert.equal(t.sor.tableSizeBytes("fam", "users"), 5 + 8);
    t.ok(mutate([{ table: "users", delete: true, values: { id: "é€" } }]));
    assert.equal(t.sor.tableSizeBytes("fam", "users"), 0);
    const bad = t.apply({
      type: "set_table_limit",
      family: "fam",
      table: "users",
      maxSizeBytes: 10,
      warnSizeBytes: 50,
    });
    assert.equal(bad.ok ? "" : bad.error.code, "bad_request");
  } finally {
    t.dispose();
  }
});

Deno.test("an idempotency key returns the first result and applies nothing twice", () => {
  const t = setup();
  try {
    const first = t.apply(mutate([upsert("a")]), "k1");
    t.ts += 1000; // a retry is stamped later by the leader
    const again = t.apply(mutate([upsert("a")]), "k1");
    assert.deepEqual(again, first);
    assert.equal(t.sor.lastSeq(), 3);
    const reused = t.apply(mutate([upsert("b")]), "k1");
    assert.equal(reused.ok ? 0 : reused.error.status, 422);
    // A failure is not remembered: the retry is evaluated afresh.
    const fail = t.apply({ type: "create_family", family: "fam" }, "k2");
    assert.equal(fail.ok, false);
    t.ok({ type: "drop_table", family: "fam", table: "users" });
    assert.equal(t.apply({ type: "create_family", family: "fam" }, "k2").ok, false);
  } finally {
    t.dispose();
  }
});

Deno.test("a leader clock that jumps a day ahead does not make retries apply twice", () => {
  const t = setup();
  try {
    const first = t.apply(mutate([upsert("a")]), "k1");
    t.ts += 25 * 60 * 60 * 1000; // a new leader's clock is 25 hours ahead
    t.ok(mutate([upsert("b")]), "k2"); // its first write would have pruned every older key
    const retry = t.apply(mutate([upsert("a")]), "k1");
    assert.deepEqual(retry, first, "the retry answers the first result");
    assert.equal(t.sor.ledger(0).filter((e) => JSON.stringify(e).includes('"id":"a"')).length, 1);
  } finally {
    t.dispose();
  }
});

Deno.test("ledger time never goes backwards when a new leader's clock is behind", () => {
  const t = setup();
  try {
    t.ok(mutate([upsert("a")]));
    const before = t.ts;
    t.ts -= 2 * 60 * 60 * 1000; // two hours behind
    t.ok(mutate([upsert("b")]));
    const entries = t.sor.ledger(0);
    assert.equal(entries.at(-1)!.ts, before);
    for (let i = 1; i < entries.length; i++) assert.ok(entries[i].ts >= entries[i - 1].ts);
  } finally {
    t.dispose();
  }
});

Deno.test("clearing a family clears all its tables in one ledger entry", () => {
  const t = setup();
  try {
    t.ok({
      type: "create_tables",
      tables: [{ family: "fam", name: "other", fields: [["k", "integer"]], keyFields: ["k"] }],
    });
    t.ok(mutate([upsert("a"), { table: "other", values: { k: 1 } }]));
    const seq = t.ok({ type: "clear_family", family: "fam" });
    assert.deepEqual(t.sor.ledger(seq - 1, 10)[0].ops, [
      { op: "clear_table", family: "fam", table: "other" },
      { op: "clear_table", family: "fam", table: "users" },
    ]);
    assert.deepEqual(t.sor.checksums().map((c) => c.rows), [0, 0]);
  } finally {
    t.dispose();
  }
});

Deno.test("the same commands on two fresh state machines give identical state", () => {
  const a = new TestSor();
  const b = new TestSor();
  try {
    const commands: SorCommandBody[] = [
      { type: "create_family", family: "fam" },
      USERS,
      {
        type: "register_writer",
        writer: "writer1",
        saltHex: "00ff",
        secretHashHex: "ab".repeat(32),
      },
      mutate([upsert("a", "-9223372036854775808", btoa("\u0000\u0001")), upsert("b", 7)]),
      mutate([upsert("a", 3), { table: "users", delete: true, values: { id: "b" } }]),
      { type: "create_family", family: "fam" },
      { type: "add_fields", family: "fam", table: "users", fields: [["extra", "decimal"]] },
    ];
    const results = [a, b].map((t) =>
      commands.map((c, i) => {
        t.ts = 1_700_000_000_000 + i;
        return t.apply(c);
      })
    );
    assert.deepEqual(results[0], results[1]);
    assert.deepEqual(a.sor.ledger(0, 100), b.sor.ledger(0, 100));
    assert.deepEqual(a.sor.checksums(), b.sor.checksums());
    assert.equal(a.sor.appliedIndex(), b.sor.appliedIndex());
  } finally {
    a.dispose();
    b.dispose();
  }
});

Deno.test("one batch with failing commands leaves the state of applying them one at a time", () => {
  // Within a batch the SoR holds back the rows every mutation rewrites (sizes, usage, leader
  // time) and writes them once before the commit; a failing command must undo only its own.
  const big = btoa("x".repeat(300));
  const commands: SorCommandBody[] = [
    {
      type: "set_table_limit",
      family: "fam",
      table: "users",
      maxSizeBytes: 200,
      warnSizeBytes: 100,
    },
    { type: "set_writer_limit", writer: "writer1", rowsPerMinute: 8 },
    {
      type: "create_tables",
      tables: [{ family: "fam", name: "small", fields: [["k", "string"]], keyFields: ["k"] }],
    },
    { type: "set_table_limit", family: "fam", table: "small", maxSizeBytes: 3, warnSizeBytes: 2 },
    mutate([upsert("a", 1), upsert("b", 2)]),
    mutate([upsert("c", 3, big)]), // over the table's max size
    // users' new size is worked out before small's overflow is found: it must not stay
    mutate([upsert("y", 1), { table: "small", delete: false, values: { k: "four" } }]),
    mutate([upsert("a", 5), upsert("a", 6)]), // the same key twice
    mutate([upsert("d", 4)]),
    {
      type: "set_table_limit",
      family: "fam",
      table: "users",
      maxSizeBytes: 900,
      warnSizeBytes: 800,
    },
    mutate([upsert("c", 3, big)]),
    mutate([upsert("e"), upsert("f"), upsert("g"), upsert("h"), upsert("i")]), // over the rate
    mutate([{ table: "users", delete: true, values: { id: "a" } }]),
    mutate([upsert("b", 20)]),
  ];
  const stamp = (i: number) => 1_700_000_000_000 + i * 7;
  const one = setup();
  const batched = setup();
  try {
    const singly = commands.map((c, i) => {
      one.ts = stamp(i);
      return one.apply(c);
    });
    const first = batched.sor.appliedIndex() + 1;
    const together = batched.sor.applyEntries(commands.map((c, i) => ({
      index: first + i,
      term: 1,
      kind: "app" as const,
      data: encodeCommand({ ...c, ts: stamp(i) }),
    })));
    assert.deepEqual(together, singly);
    assert.deepEqual(
      singly.map((r) => r.ok ? "ok" : r.error.code),
      [
        "ok",
        "ok",
        "ok",
        "ok",
        "ok",
        "table_size_limit_exceeded",
        "table_size_limit_exceeded",
        "duplicate_key",
        "ok",
        "ok",
        "ok",
        "rate_limited",
        "ok",
        "ok",
      ],
    );
    for (const t of [one, batched, (batched.reopen(), batched), (one.reopen(), one)]) {
      assert.equal(t.sor.tableSizeBytes("fam", "users"), one.sor.tableSizeBytes("fam", "users"));
      assert.deepEqual(t.sor.writerUsage("writer1"), one.sor.writerUsage("writer1"));
    }
    assert.equal(batched.sor.tableSizeBytes("fam", "users"), 9 + 9 + 9 + (1 + 8 + 300) - 9);
    assert.deepEqual(batched.sor.writerUsage("writer1").rows, 2 + 1 + 1 + 1 + 1);
    assert.deepEqual(batched.sor.checksums(), one.sor.checksums());
    assert.deepEqual(batched.sor.ledger(0, 100), one.sor.ledger(0, 100));
  } finally {
    one.dispose();
    batched.dispose();
  }
});

Deno.test("under sustained writes the WAL starts over after each background checkpoint", async () => {
  // Checkpoints run on a worker beside the writer, so they never catch up with it on their own;
  // the state machine finishes each between two batches, and the WAL is then reused.
  const dir = Deno.makeTempDirSync({ prefix: "ctl-sor-wal-test-" });
  const sor = new SorStateMachine(`${dir}/sor.db`, { checkpointIntervalMs: 50 });
  const t = { sor, ts: 1_700_000_000_000 };
  let index = 0;
  const apply = (bodies: SorCommandBody[]) =>
    sor.applyEntries(bodies.map((b) => ({
      index: ++index,
      term: 1,
      kind: "app" as const,
      data: encodeCommand({ ...b, ts: t.ts }),
    })));
  try {
    apply([
      { type: "create_family", family: "fam" },
      USERS,
      { type: "register_writer", writer: "writer1", saltHex: "00", secretHashHex: "ab".repeat(32) },
      { type: "set_writer_limit", writer: "writer1", rowsPerMinute: 100_000_000 },
    ]);
    const blob = btoa("y".repeat(3000)); // ~1 page per row: the WAL grows fast without resets
    let walMaxBytes = 0;
    const until = performance.now() + 1_500;
    for (let n = 0; performance.now() < until; n++) {
      const results = apply(Array.from(
        { length: 20 },
        (_, i) => mutate([upsert(`k${(n * 20 + i) % 2_000}`, n, blob)]),
      ));
      assert.ok(results.every((r) => r?.ok));
      walMaxBytes = Math.max(walMaxBytes, Deno.statSync(`${dir}/sor.db-wal`).size);
      await new Promise((r) => setTimeout(r, 0)); // the worker's answers arrive between batches
    }
    assert.ok(index > 1_000, `only ${index} entries applied`);
    // Without the restarts the WAL reached ~90 MB in this run (measured by removing them).
    assert.ok(walMaxBytes < 32 * 1024 * 1024, `WAL reached ${walMaxBytes} bytes`);
  } finally {
    sor.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a restart resumes at the stored applied index and refuses to apply it again", () => {
  const t = setup();
  try {
    t.ok(mutate([upsert("a")]));
    const index = t.sor.appliedIndex();
    t.reopen();
    assert.equal(t.sor.appliedIndex(), index);
    assert.equal(t.sor.lastSeq(), 3);
    assert.throws(() =>
      t.sor.apply(index, encodeCommand({ type: "create_family", family: "zzz", ts: 1 }))
    );
    t.ok(mutate([upsert("b")]));
    assert.equal(t.sor.lastSeq(), 4);
  } finally {
    t.dispose();
  }
});

Deno.test("snapshot and restore round-trip the whole state", async () => {
  const source = setup();
  const target = new TestSor();
  try {
    source.ok(mutate([upsert("a", "9223372036854775807")], { cookieBase64: btoa("c1") }));
    const image = source.sor.snapshot();
    target.ok({ type: "create_family", family: "junk" });
    await target.sor.restore(image, source.sor.appliedIndex());
    assert.equal(target.sor.appliedIndex(), source.sor.appliedIndex());
    assert.deepEqual(
      [...Deno.readDirSync(target.dir)].map((e) => e.name).filter((n) => !n.startsWith("sor.db")),
      [],
      "no staging file left beside the SoR",
    );
    assert.deepEqual(target.sor.ledger(0, 100), source.sor.ledger(0, 100));
    assert.deepEqual(target.sor.checksums(), source.sor.checksums());
    assert.deepEqual(target.sor.families(), ["fam"]);
    assert.ok(target.sor.verifyWriter("writer1", "secret1"));
    assert.ok(!target.sor.verifyWriter("writer1", "secret2"));
    assert.equal(new TextDecoder().decode(target.sor.cookie("writer1")), "c1");
    // Writing continues after a restore, on the restored state.
    target.ok(mutate([upsert("b")]));
    assert.equal(target.sor.lastSeq(), 4);
    target.reopen();
    assert.equal(target.sor.lastSeq(), 4);
    await assert.rejects(target.sor.restore(new Uint8Array([1, 2, 3])), /not a SQLite file/);
  } finally {
    source.dispose();
    target.dispose();
  }
});

Deno.test("a snapshot copied to a file carries the applied index its state was copied at", async () => {
  const source = setup();
  const target = new TestSor();
  const dir = await Deno.makeTempDir({ prefix: "ctl-sor-snapshot-file-" });
  try {
    source.ok(mutate([upsert("a", 1)]));
    const { index } = await source.sor.snapshotToFile(`${dir}/copy.db`);
    const data = await Deno.readFile(`${dir}/copy.db`);
    assert.equal(index, source.sor.appliedIndex());
    // Writes after the copy are not in it; a restore at its index gives the state back then.
    const checksumsThen = source.sor.checksums();
    source.ok(mutate([upsert("b", 2)]));
    await target.sor.restore(data, index);
    assert.equal(target.sor.appliedIndex(), index);
    assert.deepEqual(target.sor.checksums(), checksumsThen);
    assert.notDeepEqual(target.sor.checksums(), source.sor.checksums());
  } finally {
    source.dispose();
    target.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checksums differ when any value differs and match an independent copy", () => {
  const t = setup();
  try {
    t.ok(mutate([upsert("a", 1), upsert("b", 2)]));
    const copy = new DatabaseSync(":memory:");
    copy.exec(
      `CREATE TABLE fam___users ("id" VARCHAR(191), "n" INTEGER, "blob" BLOB, PRIMARY KEY ("id"))`,
    );
    copy.exec(`INSERT INTO fam___users VALUES ('b', 2, NULL), ('a', 1, NULL)`);
    assert.deepEqual(tableChecksums(copy), t.sor.checksums());
    copy.exec(`UPDATE fam___users SET n = 3 WHERE id = 'b'`);
    assert.notDeepEqual(tableChecksums(copy), t.sor.checksums());
    copy.close();
  } finally {
    t.dispose();
  }
});

Deno.test("a leader's prepared commands apply exactly as their bytes do on a follower", () => {
  // The leader applies its own proposals from the command it built (PreparedCommand), the other
  // replicas from the bytes; both must reach the same state. All commands are prepared before
  // any applies, as when proposals queue behind a schema change: mutations prepared against the
  // schema before `add_fields` must be validated again at apply and fail there as on a follower.
  const leader = setup();
  const follower = setup();
  try {
    const commands: SorCommandBody[] = [
      mutate([upsert("a", -0), upsert("b", "-9223372036854775808", btoa("\u0000\u00ff"))]),
      mutate([upsert("c\u00e9\u{1f600}", 5), {
        table: "users",
        delete: true,
        values: { id: "b" },
      }]),
      mutate([upsert("d"), upsert("d")]), // duplicate key: refused
      mutate([upsert("e")], { cookieBase64: btoa("c1") }),
      mutate([upsert("f")], { checkCookieBase64: btoa("other") }), // cookie conflict
      { type: "add_fields", family: "fam", table: "users", fields: [["x", "decimal"]] },
      mutate([upsert("g")]), // prepared without "x": now missing_field
      mutate([{ table: "users", delete: true, values: { id: "a" } }]), // deletes stay valid
    ];
    const first = leader.sor.appliedIndex() + 1;
    const entries = commands.map((c, i) => leader.preparedEntry(c, first + i));
    assert.ok(entries.filter((e) => (e.local as PreparedCommand).mutation).length >= 5);
    const fromPrepared = leader.sor.applyEntries(entries);
    const fromBytes = follower.sor.applyEntries(
      entries.map(({ index, kind, data }) => ({ index, kind, data })),
    );
    assert.deepEqual(fromPrepared, fromBytes);
    assert.deepEqual(
      fromPrepared.map((r) => r?.ok ? "ok" : r?.error.code),
      ["ok", "ok", "duplicate_key", "ok", "cookie_conflict", "ok", "missing_field", "ok"],
    );
    // -0 is stored as 0 on both (the log's JSON has no -0).
    const more = [mutate([{
      table: "users",
      delete: false,
      values: { id: "z", n: -0, blob: null, x: -0 },
    }])];
    const next = leader.sor.appliedIndex() + 1;
    const last = more.map((c, i) => leader.preparedEntry(c, next + i));
    assert.deepEqual(
      leader.sor.applyEntries(last),
      follower.sor.applyEntries(last.map(({ index, kind, data }) => ({ index, kind, data }))),
    );
    assert.deepEqual(leader.sor.ledger(0, 100), follower.sor.ledger(0, 100));
    assert.deepEqual(leader.sor.checksums(), follower.sor.checksums());
    assert.deepEqual(rows(leader), rows(follower));
  } finally {
    leader.dispose();
    follower.dispose();
  }
});

Deno.test("table sizes stay equal to a recount of the stored rows, composite keys included", () => {
  // Each batch's size change subtracts the stored size of the rows it replaces or deletes, looked
  // up by key in chunks; a recount from the rows themselves must agree after every batch.
  const t = new TestSor();
  try {
    t.ok({ type: "create_family", family: "fam" });
    t.ok({
      type: "create_tables",
      tables: [{
        family: "fam",
        name: "multi",
        fields: [["b", "bytestring"], ["i", "integer"], ["t", "text"], ["d", "decimal"]],
        keyFields: ["b", "i"],
      }],
    });
    t.registerWriter("writer1", "secret1");
    t.ok({ type: "set_writer_limit", writer: "writer1", rowsPerMinute: 1_000_000 });
    const recount = () => {
      t.sor.flush();
      const db = new DatabaseSync(t.path, { readOnly: true });
      try {
        const stmt = db.prepare("SELECT b, i, t, d FROM fam___multi");
        stmt.setReadBigInts(true);
        const rows = stmt.all();
        let size = 0;
        for (const r of rows) {
          size += (r.b as Uint8Array).length + 8 + new TextEncoder().encode(String(r.t)).length +
            (r.d === null ? 0 : 8);
        }
        return { rows: rows.length, size };
      } finally {
        db.close();
      }
    };
    let seed = 7;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (const batch of [1, 3, 100, 70, 2, 100, 65, 1, 100]) {
      const used = new Set<string>();
      const mutations = [];
      while (mutations.length < batch) {
        const b = btoa(String.fromCharCode(rand(40), 255));
        const i = rand(3) === 0 ? "9007199254740993" : rand(5);
        if (used.has(`${b}/${i}`)) continue;
        used.add(`${b}/${i}`);
        mutations.push(
          rand(6) === 0 ? { table: "multi", delete: true, values: { b, i } } : {
            table: "multi",
            delete: false,
            values: { b, i, t: "é".repeat(rand(30)), d: rand(4) === 0 ? null : rand(100) / 7 },
          },
        );
      }
      t.ok({ type: "mutate", family: "fam", writer: "writer1", mutations: mutations as never });
      const { rows, size } = recount();
      assert.ok(rows > 0);
      assert.equal(t.sor.tableSizeBytes("fam", "multi"), size, `after a batch of ${batch}`);
    }
  } finally {
    t.dispose();
  }
});

// --- shared transactions (commitEveryMs) ---------------------------------------------------------

/** The applied index another connection sees: what is committed. */
function committedIndex(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const row = db.prepare("SELECT value FROM _ctl_meta WHERE key = 'applied_index'").get();
    return Number(row?.value ?? 0);
  } finally {
    db.close();
  }
}

Deno.test("applied batches are read at once here and reach other connections within commitEveryMs", async () => {
  const t = new TestSor({ commitEveryMs: 40 });
  try {
    t.sor.flush();
    t.ok({ type: "create_family", family: "fam" });
    t.ok(USERS);
    t.registerWriter("writer1", "secret1");
    t.sor.flush();
    const before = t.sor.appliedIndex();
    assert.equal(committedIndex(t.path), before);
    t.ok(mutate([upsert("a", 1)]));
    t.ok(mutate([upsert("b", 2)]));
    assert.equal(t.sor.appliedIndex(), before + 2, "this connection reads what it applied");
    assert.equal(t.sor.ledger(0).length, 4);
    assert.equal(committedIndex(t.path), before, "not committed yet");
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(committedIndex(t.path), before + 2, "committed by the timer");
    assert.deepEqual(rows(t), [{ id: "a", n: "1" }, { id: "b", n: "2" }]);
  } finally {
    t.dispose();
  }
});

Deno.test("a crash before the commit loses only uncommitted batches, and the log re-applies them", () => {
  const t = new TestSor({ commitEveryMs: 3_600_000 });
  const crashDir = Deno.makeTempDirSync({ prefix: "ctl-sor-crash-" });
  try {
    t.ok({ type: "create_family", family: "fam" });
    t.ok(USERS);
    t.registerWriter("writer1", "secret1");
    const entries = Array.from({ length: 30 }, (_, i) => {
      const keys = [`k${i % 7}`, `k${(i * 3) % 11}`];
      return mutate(keys.map((k, j) => upsert(k, i * 10 + j)));
    });
    const first = t.sor.appliedIndex() + 1;
    const stamped = entries.map((body, i) => ({
      index: first + i,
      kind: "app" as const,
      data: encodeCommand({ ...body, ts: t.ts }),
    }));
    t.sor.applyEntries(stamped.slice(0, 10));
    t.sor.flush();
    t.sor.applyEntries(stamped.slice(10, 20));
    t.sor.applyEntries(stamped.slice(20));
    // kill -9 now: the files hold what was committed.
    for (const suffix of ["", "-wal"]) {
      try {
        Deno.copyFileSync(t.path + suffix, `${crashDir}/sor.db${suffix}`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    const image = new SorStateMachine(`${crashDir}/sor.db`, { commitEveryMs: 0 });
    try {
      assert.equal(image.appliedIndex(), first + 9, "restarts after the last committed batch");
      // Raft re-delivers the committed entries after the applied index.
      image.applyEntries(stamped.slice(10, 25));
      image.applyEntries(stamped.slice(25));
      assert.deepEqual(image.checksums(), t.sor.checksums());
      assert.deepEqual(image.ledger(0), t.sor.ledger(0));
      assert.equal(image.appliedIndex(), t.sor.appliedIndex());
    } finally {
      image.close();
    }
  } finally {
    t.dispose();
    Deno.removeSync(crashDir, { recursive: true });
  }
});

/** An entry whose command throws when read: a bug in the apply, not a verdict (no CtlError). */
function unreadableEntry(index: number): CommittedEntry {
  return {
    index,
    kind: "app",
    data: new Uint8Array(),
    local: new PreparedCommand(
      new Proxy({}, {
        get() {
          throw new Error("unreadable command");
        },
      }) as SorCommand,
    ),
  };
}

/**
 * Applies a row, then one batch of a good mutation and a command the code cannot read (a bug,
 * not a verdict: not a CtlError), and checks that the batch threw and left only the first row.
 * Returns the applied index before the failed batch.
 */
function failBatchAfterOneRow(t: TestSor): number {
  t.ok({ type: "create_family", family: "fam" });
  t.ok(USERS);
  t.registerWriter("writer1", "secret1");
  t.ok(mutate([upsert("kept", 1)]));
  const applied = t.sor.appliedIndex();
  const good = t.preparedEntry(mutate([upsert("undone", 2)]), applied + 1);
  assert.throws(
    () => t.sor.applyEntries([good, unreadableEntry(applied + 2)]),
    /unreadable command/,
  );
  assert.equal(t.sor.appliedIndex(), applied);
  assert.deepEqual(rows(t), [{ id: "kept", n: "1" }]);
  return applied;
}

Deno.test("a batch that opens the transaction and fails unexpectedly leaves nothing behind", () => {
  // commitEveryMs 0: every batch commits, so each one opens the transaction (no savepoint).
  const t = new TestSor({ commitEveryMs: 0 });
  try {
    const applied = failBatchAfterOneRow(t);
    assert.equal(committedIndex(t.path), applied);
    // The Raft loop would stop here; a retry of the same entries, minus the bug, applies cleanly.
    const again = t.preparedEntry(mutate([upsert("later", 3)]), applied + 1);
    assert.deepEqual(t.sor.applyEntries([again]).map((r) => r?.ok), [true]);
    assert.deepEqual(rows(t), [{ id: "kept", n: "1" }, { id: "later", n: "3" }]);
    assert.equal(committedIndex(t.path), applied + 1);
  } finally {
    t.dispose();
  }
});

Deno.test("a batch that fails unexpectedly undoes itself only, not the open transaction's others", () => {
  const t = new TestSor({ commitEveryMs: 3_600_000 });
  try {
    const applied = failBatchAfterOneRow(t);
    assert.equal(committedIndex(t.path), applied, "the earlier batches were committed intact");
  } finally {
    t.dispose();
  }
});

Deno.test("held-back rows wait for the COMMIT and survive a later batch's failure in the same transaction", () => {
  const t = new TestSor({ commitEveryMs: 3_600_000 });
  try {
    t.ok({ type: "create_family", family: "fam" });
    t.ok(USERS);
    t.registerWriter("writer1", "secret1");
    t.sor.flush();
    const committed = () => {
      const db = new DatabaseSync(t.path, { readOnly: true });
      try {
        return {
          applied: committedIndex(t.path),
          size: Number(
            db.prepare("SELECT size_bytes FROM _ctl_tables WHERE family = 'fam' AND name = 'users'")
              .get()?.size_bytes,
          ),
          rows: Number(
            db.prepare("SELECT window_rows FROM _ctl_writers WHERE name = 'writer1'").get()
              ?.window_rows,
          ),
        };
      } finally {
        db.close();
      }
    };
    const before = committed();
    t.ok(mutate([upsert("a", 1)]));
    t.ok(mutate([upsert("b", 2), upsert("c", 3)]));
    const expected = {
      applied: t.sor.appliedIndex(),
      size: t.sor.tableSizeBytes("fam", "users"),
      rows: t.sor.writerUsage("writer1").rows,
    };
    assert.deepEqual(expected.rows, 3);
    assert.ok(expected.size > 0);
    assert.deepEqual(committed(), before, "nothing reaches the file before the COMMIT");

    // A batch that fails unexpectedly is undone alone: its held-back rows go, earlier ones stay.
    const good = t.preparedEntry(mutate([upsert("undone", 4)]), expected.applied + 1);
    assert.throws(
      () => t.sor.applyEntries([good, unreadableEntry(expected.applied + 2)]),
      /unreadable command/,
    );
    assert.deepEqual({
      applied: t.sor.appliedIndex(),
      size: t.sor.tableSizeBytes("fam", "users"),
      rows: t.sor.writerUsage("writer1").rows,
    }, expected);
    t.sor.flush();
    assert.deepEqual(committed(), expected, "the COMMIT writes the earlier batches' rows");
    assert.deepEqual(rowIds(t), ["a", "b", "c"]);
  } finally {
    t.dispose();
  }
});

// --- speculation (the leader's lone write applied ahead of its commit) -------------------------

const TERM = 3;

/** What a read of every kind sees, and what the file holds once committed. */
function observed(t: TestSor) {
  return {
    applied: t.sor.appliedIndex(),
    lastSeq: t.sor.lastSeq(),
    ledger: t.sor.ledger(0),
    size: t.sor.tableSizeBytes("fam", "users"),
    usage: t.sor.writerUsage("writer1"),
    cookie: [...t.sor.cookie("writer1")!],
    checksums: t.sor.checksums(),
  };
}

/** A leader's entry for `body` at the next index, in term `term`. */
function nextEntry(t: TestSor, body: SorCommandBody, term = TERM): CommittedEntry {
  return { ...t.preparedEntry(body, t.sor.appliedIndex() + 1), term };
}

/** Writes that exercise every verdict a mutation can reach: rows, cookies, deletes, refusals. */
const SPECULATED: SorCommandBody[] = [
  mutate([upsert("a", 1)]),
  mutate([upsert("b", 2, "AAEC"), upsert("c", 3)], { cookie: "AQI=" }),
  mutate([upsert("d", 4)], { check_cookie: "AQI=" }),
  mutate([upsert("e", 5)], { check_cookie: "BBBB" }), // refused: cookie conflict
  mutate([{ table: "users", delete: true, key: { id: "a" } }]),
  mutate([upsert("b", 7)]),
];

/** Runs `body` on two fresh SoRs set up alike: one to speculate on, one to apply plainly. */
function withTwins(body: (spec: TestSor, plain: TestSor) => void): void {
  const spec = setup();
  const plain = setup();
  try {
    body(spec, plain);
  } finally {
    spec.dispose();
    plain.dispose();
  }
}

Deno.test("a speculated write kept at its commit gives the result and state of applying it then", () =>
  withTwins((spec, plain) => {
    for (const body of SPECULATED) {
      const entry = nextEntry(spec, body);
      assert.equal(spec.sor.speculate(entry.index, TERM, entry.local), true);
      const [kept] = spec.sor.applyEntries([entry]);
      const [applied] = plain.sor.applyEntries([nextEntry(plain, body)]);
      assert.deepEqual(kept, applied);
    }
    assert.deepEqual(spec.sor.speculations, { kept: SPECULATED.length, undone: 0 }, "none redone");
    assert.deepEqual(observed(spec), observed(plain));
    spec.reopen();
    plain.reopen();
    assert.deepEqual(observed(spec), observed(plain), "and so does the file");
  }));

Deno.test("reads during a speculation see only committed state; the entry then applies as committed", () =>
  withTwins((t, plain) => {
    t.ok(mutate([upsert("a", 1)]));
    plain.ok(mutate([upsert("a", 1)]));
    const before = observed(t);
    const body = mutate([upsert("b", 2), upsert("a", 9)], { cookie: "AQI=" });
    const entry = nextEntry(t, body);
    assert.equal(t.sor.speculate(entry.index, TERM, entry.local), true);
    // The ledger and its last seq stop short of the speculation and leave it in place.
    assert.equal(t.sor.lastSeq(), before.lastSeq);
    assert.deepEqual(t.sor.ledger(0), before.ledger);
    assert.deepEqual(t.sor.speculations, { kept: 0, undone: 0 });
    // A read of what the mutation changed undoes it first.
    assert.equal(t.sor.tableSizeBytes("fam", "users"), before.size);
    assert.deepEqual(t.sor.speculations, { kept: 0, undone: 1 });
    assert.deepEqual(observed(t), before);
    const [result] = t.sor.applyEntries([entry]);
    assert.deepEqual(result, plain.sor.applyEntries([nextEntry(plain, body)])[0]);
    assert.deepEqual(observed(t), observed(plain));
  }));

Deno.test("a speculation on an entry a new leader replaced is undone, and the entry that committed applies", () =>
  withTwins((t, plain) => {
    const mine = nextEntry(t, mutate([upsert("mine", 1)]));
    const theirs = nextEntry(t, mutate([upsert("theirs", 2)]), TERM + 1);
    assert.equal(t.sor.speculate(mine.index, TERM, mine.local), true);
    const [result] = t.sor.applyEntries([{ ...theirs, local: undefined }]);
    assert.deepEqual(t.sor.speculations, { kept: 0, undone: 1 });
    assert.deepEqual(
      result,
      plain.sor.applyEntries([nextEntry(plain, mutate([upsert("theirs", 2)]))])[0],
    );
    assert.deepEqual(observed(t), observed(plain));
    assert.deepEqual(rows(t), [{ id: "theirs", n: "2" }]);

    // Same index and term but another proposal (never happens in Raft): undone all the same.
    const next = nextEntry(t, mutate([upsert("x", 1)]));
    assert.equal(t.sor.speculate(next.index, TERM + 1, next.local), true);
    const other = nextEntry(t, mutate([upsert("x", 1)]), TERM + 1);
    t.sor.applyEntries([other]);
    assert.deepEqual(t.sor.speculations, { kept: 0, undone: 2 });
  }));

Deno.test("an abandoned speculation leaves the SoR as it was, in memory and in the file", () => {
  const t = new TestSor({ commitEveryMs: 3_600_000 });
  try {
    t.ok({ type: "create_family", family: "fam" });
    t.ok(USERS);
    t.registerWriter("writer1", "secret1");
    for (const joinsOpenTransaction of [false, true]) {
      t.sor.flush();
      if (joinsOpenTransaction) t.ok(mutate([upsert(`kept-${t.sor.appliedIndex()}`, 1)]));
      const before = observed(t);
      const entry = nextEntry(t, mutate([upsert("gone", 1)], { cookie: "AQI=" }), TERM);
      assert.equal(t.sor.speculate(entry.index, TERM, entry.local), true);
      t.sor.abandonSpeculation();
      assert.deepEqual(t.sor.speculations, { kept: 0, undone: 1 });
      assert.deepEqual(observed(t), before, `in memory (joins: ${joinsOpenTransaction})`);
      t.reopen();
      assert.deepEqual(observed(t), before, `in the file (joins: ${joinsOpenTransaction})`);
    }
    assert.ok(!rows(t).some((r) => (r as { id: string }).id === "gone"));
  } finally {
    t.dispose();
  }
});

Deno.test("a COMMIT due during a speculation waits for its verdict, and never writes it uncommitted", async () => {
  const t = new TestSor({ commitEveryMs: 20 });
  try {
    t.ok({ type: "create_family", family: "fam" });
    t.ok(USERS);
    t.registerWriter("writer1", "secret1");
    t.sor.flush();
    // Kept: the COMMIT held back by the speculation follows its verdict, but not inside that
    // apply (the write's reply goes first): on the next turn of the event loop.
    t.ok(mutate([upsert("a", 1)]));
    const first = nextEntry(t, mutate([upsert("b", 2)]));
    assert.equal(t.sor.speculate(first.index, TERM, first.local), true);
    await new Promise((r) => setTimeout(r, 30)); // one commit tick
    assert.equal(committedIndex(t.path), first.index - 2, "the tick waits for the verdict");
    t.sor.applyEntries([first]);
    assert.equal(committedIndex(t.path), first.index - 2, "not on the write's path");
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(committedIndex(t.path), first.index, "committed with the kept speculation");

    // Or, sooner, by the next speculation before it begins (the leader is waiting for fsyncs).
    t.ok(mutate([upsert("b1", 2)]));
    const next = nextEntry(t, mutate([upsert("b2", 2)]));
    assert.equal(t.sor.speculate(next.index, TERM, next.local), true);
    await new Promise((r) => setTimeout(r, 30));
    t.sor.applyEntries([next]);
    const after = nextEntry(t, mutate([upsert("b3", 2)]));
    assert.equal(t.sor.speculate(after.index, TERM, after.local), true);
    assert.equal(committedIndex(t.path), next.index, "the owed COMMIT came first");
    t.sor.applyEntries([after]);

    // Undecided for two ticks: undone, and the applied batches before it are committed.
    t.ok(mutate([upsert("c", 3)]));
    const second = nextEntry(t, mutate([upsert("d", 4)]));
    assert.equal(t.sor.speculate(second.index, TERM, second.local), true);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(committedIndex(t.path), second.index - 1);
    assert.deepEqual(t.sor.speculations, { kept: 3, undone: 1 });
    const committed = ["a", "b", "b1", "b2", "b3", "c"];
    assert.deepEqual(rowIds(t), committed);
    const [result] = t.sor.applyEntries([second]);
    assert.equal(result?.ok, true);
    assert.deepEqual(rowIds(t), [...committed, "d"]);
  } finally {
    t.dispose();
  }
});

Deno.test("only the next entry's mutation, proposed here, is speculated on", () => {
  const t = setup();
  try {
    const entry = nextEntry(t, mutate([upsert("a", 1)]));
    assert.equal(t.sor.speculate(entry.index + 1, TERM, entry.local), false, "not the next index");
    assert.equal(t.sor.speculate(entry.index, TERM, undefined), false, "no prepared command");
    const ddl = nextEntry(t, { type: "create_family", family: "other" });
    assert.equal(t.sor.speculate(ddl.index, TERM, ddl.local), false, "not a mutation");
    assert.equal(t.sor.speculate(entry.index, TERM, entry.local), true);
    assert.equal(t.sor.speculate(entry.index, TERM, entry.local), false, "one at a time");
    // Entries after the speculated one, committed with it, apply in the same call.
    const later = { ...t.preparedEntry(mutate([upsert("b", 2)]), entry.index + 1), term: TERM };
    const results = t.sor.applyEntries([entry, later]);
    assert.deepEqual(results.map((r) => r?.ok), [true, true]);
    assert.deepEqual(t.sor.speculations, { kept: 1, undone: 0 });
    assert.deepEqual(rowIds(t), ["a", "b"]);
  } finally {
    t.dispose();
  }
});
