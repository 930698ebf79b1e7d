import assert from "node:assert/strict";
import { encodeCommand } from "./commands.ts";
import { sorRaftStateMachine } from "./raft_adapter.ts";
import { TestSor } from "./testing.ts";

Deno.test("the Raft adapter applies app entries, records internal ones, and reports lastSeq", async () => {
  const t = new TestSor();
  try {
    const reported: number[] = [];
    const sm = sorRaftStateMachine(t.sor, (seq) => reported.push(seq));
    const results = await sm.apply([
      { index: 1, term: 1, kind: "internal", data: new Uint8Array() },
      {
        index: 2,
        term: 1,
        kind: "app",
        data: encodeCommand({ type: "create_family", family: "fam", ts: 5 }),
      },
      {
        index: 3,
        term: 1,
        kind: "app",
        data: encodeCommand({ type: "create_family", family: "fam", ts: 6 }),
      },
    ]);
    assert.deepEqual(results[0], null);
    assert.deepEqual(results[1], { ok: true, seq: 1 });
    assert.equal((results[2] as { ok: boolean }).ok, false);
    assert.equal(sm.appliedIndex(), 3);
    assert.deepEqual(reported, [1]);
    const image = await sm.snapshot();
    const other = new TestSor();
    try {
      const restored = sorRaftStateMachine(other.sor, (seq) => reported.push(seq));
      await restored.restore(image, 3);
      assert.equal(restored.appliedIndex(), 3);
      assert.deepEqual(reported, [1, 1]);
      await assert.rejects(async () => await restored.restore(image, 4));
    } finally {
      other.dispose();
    }
  } finally {
    t.dispose();
  }
});
