/** One conformance suite, run against every LogStore implementation. */

import assert from "node:assert/strict";
import type { Entry, HardState, Snapshot } from "../../../raft/types.ts";
import { MemoryLog, type MemoryLogData, newMemoryLogData } from "./memory_log.ts";
import { SegmentLog } from "./segment_log.ts";
import { SqliteLog } from "./sqlite_log.ts";
import { type LogStore, StorageError } from "./types.ts";

interface Impl {
  name: string;
  /** Opens the store kept under `dir` (memory: keyed by dir), as a restart would. */
  open(dir: string): Promise<LogStore>;
}

const memory = new Map<string, MemoryLogData>();
const impls: Impl[] = [
  {
    name: "memory",
    open: (dir) => {
      if (!memory.has(dir)) memory.set(dir, newMemoryLogData());
      return Promise.resolve(new MemoryLog(memory.get(dir)!));
    },
  },
  { name: "segment", open: (dir) => SegmentLog.open(dir, { segmentBytesMax: 4096 }) },
  { name: "sqlite", open: (dir) => SqliteLog.open(dir) },
];

function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    const data = new Uint8Array(100).fill(i % 251);
    data[0] = term;
    out.push({ index: i, term, type: i % 7 === 0 ? "conf" : "normal", data });
  }
  return out;
}

function snapshot(index: number, term: number): Snapshot {
  return {
    meta: {
      index,
      term,
      conf: {
        voters: ["a", "b", "c"],
        learners: [],
        votersOutgoing: [],
        learnersNext: [],
        autoLeave: false,
      },
    },
    data: new TextEncoder().encode(`state@${index}`),
  };
}

async function reopen(impl: Impl, dir: string, log: LogStore) {
  await log.close();
  const next = await impl.open(dir);
  return { log: next, state: await next.load() };
}

for (const impl of impls) {
  const t = (name: string, body: (dir: string) => Promise<void>) =>
    Deno.test(`LogStore[${impl.name}]: ${name}`, async () => {
      const dir = await Deno.makeTempDir({ prefix: "ctl-logstore-" });
      try {
        await body(dir);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });

  t("a new store is empty", async (dir) => {
    const log = await impl.open(dir);
    const state = await log.load();
    assert.deepEqual(state, {
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot: null,
      entries: [],
    });
    await log.close();
  });

  t("entries and hard state survive a restart byte for byte", async (dir) => {
    let log = await impl.open(dir);
    await log.load();
    await log.append(entries(1, 60, 1), { term: 1, vote: "a", commit: 0 });
    await log.append(entries(61, 80, 2), { term: 2, vote: null, commit: 55 });
    const { log: next, state } = await reopen(impl, dir, log);
    log = next;
    assert.deepEqual(state.hardState, { term: 2, vote: null, commit: 55 });
    assert.deepEqual(state.entries, [...entries(1, 60, 1), ...entries(61, 80, 2)]);
    await log.close();
  });

  t(
    "appends waited for on the caller's thread, between queued ones, survive a restart in order",
    async (dir) => {
      let log = await impl.open(dir);
      await log.load();
      // Stores without appendWaiting are held to the same order through append.
      const waiting = (e: Entry[], hs: HardState | null, waitMs: number) =>
        log.appendWaiting ? log.appendWaiting(e, hs, waitMs) : log.append(e, hs);
      const first = log.append(entries(1, 10, 1), { term: 1, vote: "a", commit: 0 });
      // Queued behind `first`: the store must still keep the order.
      const second = waiting(entries(11, 30, 1), null, 5_000);
      await Promise.all([first, second]);
      await waiting(entries(31, 40, 2), { term: 2, vote: "b", commit: 30 }, 5_000);
      await waiting([], { term: 2, vote: "b", commit: 40 }, 0);
      const { log: next, state } = await reopen(impl, dir, log);
      log = next;
      assert.deepEqual(state.hardState, { term: 2, vote: "b", commit: 40 });
      assert.deepEqual(state.entries, [...entries(1, 30, 1), ...entries(31, 40, 2)]);
      await log.close();
    },
  );

  t("an append at an existing index replaces the suffix (Raft overwrite)", async (dir) => {
    let log = await impl.open(dir);
    await log.load();
    await log.append(entries(1, 10, 1), { term: 1, vote: "a", commit: 2 });
    await log.append(entries(6, 7, 2), null);
    const { log: next, state } = await reopen(impl, dir, log);
    log = next;
    assert.deepEqual(state.entries, [...entries(1, 5, 1), ...entries(6, 7, 2)]);
    assert.deepEqual(state.hardState, { term: 1, vote: "a", commit: 2 });
    await log.append(entries(8, 9, 2), null);
    const again = await reopen(impl, dir, log);
    assert.deepEqual(again.state.entries.map((e) => [e.index, e.term]), [
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
      [5, 1],
      [6, 2],
      [7, 2],
      [8, 2],
      [9, 2],
    ]);
    await again.log.close();
  });

  t("an append that leaves a gap is refused with STORAGE_BAD_APPEND", async (dir) => {
    const log = await impl.open(dir);
    await log.load();
    await log.append(entries(1, 3, 1), null);
    await assert.rejects(
      async () => await log.append(entries(5, 6, 1), null),
      (e) => e instanceof StorageError && e.code === "STORAGE_BAD_APPEND",
    );
    await log.close();
  });

  t("a hard-state-only append keeps the entries", async (dir) => {
    const log = await impl.open(dir);
    await log.load();
    await log.append(entries(1, 3, 1), null);
    await log.append([], { term: 4, vote: "b", commit: 3 });
    const { log: next, state } = await reopen(impl, dir, log);
    assert.equal(state.entries.length, 3);
    assert.deepEqual(state.hardState, { term: 4, vote: "b", commit: 3 });
    await next.close();
  });

  t("a local snapshot plus compaction keeps the entries after it", async (dir) => {
    const log = await impl.open(dir);
    await log.load();
    await log.append(entries(1, 200, 1), { term: 1, vote: "a", commit: 150 });
    await log.saveSnapshot(snapshot(150, 1));
    await log.compact(150);
    await log.append(entries(201, 210, 1), null);
    const { log: next, state } = await reopen(impl, dir, log);
    assert.deepEqual(state.snapshot, snapshot(150, 1));
    assert.deepEqual(state.entries, entries(151, 210, 1));
    await next.close();
  });

  t("an installed snapshot restarts the log after it", async (dir) => {
    let log = await impl.open(dir);
    await log.load();
    await log.append(entries(1, 20, 1), { term: 1, vote: null, commit: 5 });
    await log.installSnapshot(snapshot(100, 3));
    let r = await reopen(impl, dir, log);
    log = r.log;
    assert.deepEqual(r.state.entries, []);
    assert.equal(r.state.snapshot?.meta.index, 100);
    await log.append(entries(101, 103, 3), { term: 3, vote: null, commit: 101 });
    r = await reopen(impl, dir, log);
    assert.deepEqual(r.state.entries, entries(101, 103, 3));
    assert.deepEqual(r.state.hardState, { term: 3, vote: null, commit: 101 });
    await r.log.close();
  });

  t("a newer snapshot replaces the older one", async (dir) => {
    const log = await impl.open(dir);
    await log.load();
    await log.append(entries(1, 50, 1), null);
    await log.saveSnapshot(snapshot(10, 1));
    await log.saveSnapshot(snapshot(40, 1));
    const { log: next, state } = await reopen(impl, dir, log);
    assert.equal(state.snapshot?.meta.index, 40);
    assert.deepEqual(state.entries, entries(41, 50, 1));
    if (impl.name !== "memory") assert.equal([...Deno.readDirSync(`${dir}/snap`)].length, 1);
    await next.close();
  });

  t(
    "a saved or installed snapshot's data reads back by its index, a replaced one's not",
    async (dir) => {
      let log = await impl.open(dir);
      await log.load();
      await log.append(entries(1, 50, 1), null);
      assert.equal(await log.loadSnapshotData(10), null, "no snapshot yet");
      await log.saveSnapshot(snapshot(10, 1));
      assert.deepEqual(await log.loadSnapshotData(10), snapshot(10, 1).data);
      await log.saveSnapshot(snapshot(40, 1));
      assert.equal(await log.loadSnapshotData(10), null, "replaced by 40");
      assert.deepEqual(await log.loadSnapshotData(40), snapshot(40, 1).data);
      await log.installSnapshot(snapshot(90, 2));
      const r = await reopen(impl, dir, log);
      log = r.log;
      assert.equal(await log.loadSnapshotData(40), null);
      assert.deepEqual(await log.loadSnapshotData(90), snapshot(90, 2).data);
      await log.close();
    },
  );

  t(
    "a snapshot saved from a file is the head then the file, as if saved from memory",
    async (dir) => {
      const log = await impl.open(dir);
      await log.load();
      await log.append(entries(1, 30, 1), null);
      const state = `${dir}-state`;
      await Deno.writeFile(state, new Uint8Array(3000).map((_, i) => i % 253));
      const head = new TextEncoder().encode("head:");
      const whole = snapshot(20, 1);
      whole.data = new Uint8Array([...head, ...(await Deno.readFile(state))]);
      await log.saveSnapshotFromFile(whole.meta, head, state);
      assert.deepEqual(await log.loadSnapshotData(20), whole.data);
      assert.ok(await Deno.stat(state), "the state file is left where it was");
      await Deno.remove(state);
      const { log: next, state: loaded } = await reopen(impl, dir, log);
      assert.deepEqual(loaded.snapshot, whole);
      assert.deepEqual(loaded.entries, entries(21, 30, 1));
      await next.close();
    },
  );

  t("writes after close are refused with STORAGE_CLOSED", async (dir) => {
    const log = await impl.open(dir);
    await log.load();
    await log.close();
    await assert.rejects(
      async () => await log.append(entries(1, 1, 1), null),
      (e) => e instanceof StorageError && e.code === "STORAGE_CLOSED",
    );
  });
}
