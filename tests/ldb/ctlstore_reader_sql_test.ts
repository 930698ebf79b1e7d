/**
 * An LDB written by our reflector answers the exact statements ctlstore's Go reader issues
 * (pkg/ldb, pkg/reader), so existing ctlstore readers can read it: a migration path.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Reflector } from "../../src/reflector/reflector.ts";
import { TestLedgerServer } from "../../src/reflector/test_ledger_server.ts";

/** mattn/go-sqlite3's first timestamp layout, `2006-01-02 15:04:05.999999999-07:00`. */
const GO_SQLITE_TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,9})?[+-]\d{2}:\d{2}$/;

Deno.test("ctlstore's reader SQL works on an LDB our reflector wrote", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-ctlstore-sql-" });
  const ldbPath = join(dir, "ldb.db");
  const server = new TestLedgerServer();
  const leaderTs = Date.UTC(2025, 4, 6, 7, 8, 9, 120);
  server.append(
    {
      seq: 1,
      ts: leaderTs - 1000,
      family: "family1",
      ops: [{
        op: "create_table",
        family: "family1",
        table: "table1234",
        fields: [["field1", "integer"], ["field2", "string"], ["field3", "bytestring"], [
          "field4",
          "decimal",
        ]],
        keyFields: ["field1", "field2"],
      }],
    },
    {
      seq: 2,
      ts: leaderTs,
      family: "family1",
      ops: [
        {
          op: "upsert",
          family: "family1",
          table: "table1234",
          values: { field1: 1234, field2: "a", field3: btoa("xyz"), field4: 1.25 },
        },
        {
          op: "upsert",
          family: "family1",
          table: "table1234",
          values: { field1: 1234, field2: "b", field3: null, field4: null },
        },
      ],
    },
  );
  const reflector = new Reflector({ ldbPath, executives: [server.url], backoffMinMs: 10 });
  const done = reflector.run();
  try {
    const deadline = Date.now() + 5_000;
    while (reflector.appliedSeq < 2) {
      assert.ok(Date.now() < deadline);
      await new Promise((r) => setTimeout(r, 5));
    }
    const db = new DatabaseSync(ldbPath, { readOnly: true });
    // FetchSeqFromLdb / Ping
    assert.deepEqual({ ...db.prepare("SELECT seq FROM _ldb_seq WHERE id = 1").get() }, { seq: 2 });
    assert.deepEqual({ ...db.prepare("SELECT seq FROM _ldb_seq WHERE id = ?").get(1) }, {
      seq: 2,
    });
    // GetLedgerLatency
    const ts = db.prepare("select timestamp from _ldb_last_update where name=?").get("ledger") as {
      timestamp: string;
    };
    assert.match(ts.timestamp, GO_SQLITE_TIMESTAMP);
    assert.equal(ts.timestamp, "2025-05-06 07:08:09.12+00:00");
    // getPrimaryKey
    const pk = db.prepare(
      "SELECT name, type FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk ASC",
    ).all("family1___table1234").map((r) => ({ ...r }));
    assert.deepEqual(pk, [{ name: "field1", type: "INTEGER" }, {
      name: "field2",
      type: "VARCHAR(191)",
    }]);
    // GetRowByKey
    const row = db.prepare(
      "SELECT * FROM family1___table1234 WHERE field1 = ? AND field2 = ?",
    ).get(1234, "a") as Record<string, unknown>;
    assert.deepEqual({ ...row, field3: [...row.field3 as Uint8Array] }, {
      field1: 1234,
      field2: "a",
      field3: [...new TextEncoder().encode("xyz")],
      field4: 1.25,
    });
    // GetRowsByKeyPrefix (one part, and a full scan)
    assert.equal(
      db.prepare("SELECT * FROM family1___table1234 WHERE field1 = ?").all(1234).length,
      2,
    );
    assert.equal(db.prepare("SELECT * FROM family1___table1234").all().length, 2);
    db.close();
  } finally {
    await reflector.stop();
    await done;
    await server.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
