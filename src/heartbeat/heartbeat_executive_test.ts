/**
 * The heartbeat against the in-process executive (no Raft, no sockets): the real routes,
 * validation and ledger, so the protocol the fake in heartbeat_test.ts assumes is checked too.
 */
import assert from "node:assert/strict";
import { createExecutiveApp, LocalExecutive } from "../executive/mod.ts";
import { Heartbeat } from "./heartbeat.ts";

Deno.test("Heartbeat against the real executive app: the ledger carries the nanos exactly", async () => {
  const exec = new LocalExecutive({ adminToken: "admin-t" });
  try {
    const app = createExecutiveApp(exec);
    const fetchApp = ((input: RequestInfo | URL, init?: RequestInit) =>
      Promise.resolve(app.fetch(new Request(input, init)))) as typeof fetch;
    const options = {
      executives: ["http://executive.test"],
      adminToken: "admin-t",
      writerSecret: "hb-secret",
      fetch: fetchApp,
    };
    const hb = new Heartbeat({
      ...options,
      nowNanos: () =>
        1_700_000_000_123_456_789n,
    });
    const seq = await hb.beat();
    // A second process (restart) finds everything in place: 409s and same-secret re-registration.
    const again = new Heartbeat({ ...options, nowNanos: () => 1_700_000_015_000_000_001n });
    const seq2 = await again.beat();
    assert.ok(seq2 > seq);
    const last = exec.sor.ledger(seq2 - 1).at(-1);
    assert.equal(last?.seq, seq2);
    assert.deepEqual(last?.ops, [{
      op: "upsert",
      family: "ctlstore",
      table: "heartbeats",
      values: { name: "heartbeat", value: "1700000015000000001" },
    }]);
  } finally {
    exec.close();
  }
});
