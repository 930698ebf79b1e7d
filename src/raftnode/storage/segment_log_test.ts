/** Crash recovery and compaction of the segment log. */

import assert from "node:assert/strict";
import type { Entry } from "../../../raft/types.ts";
import { SegmentLog, zeroFillFile } from "./segment_log.ts";
import { encodeSnapshotFile, SnapshotFiles, WORKER_WRITE_MIN_BYTES } from "./snapshot_files.ts";
import { overwriteAt as overwrite, segmentDataEnd as dataEnd } from "./testing.ts";

function entries(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push({ index: i, term, type: "normal", data: new Uint8Array(100).fill(i & 255) });
  }
  return out;
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ctl-seglog-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function segmentFiles(dir: string): string[] {
  // Not the next segment's spare file, which a closed log leaves ready.
  return [...Deno.readDirSync(`${dir}/wal`)].map((e) => e.name).filter((n) => n.endsWith(".wal"))
    .sort();
}

async function writeThreeBatches(dir: string): Promise<string> {
  const log = await SegmentLog.open(dir);
  await log.load();
  await log.append(entries(1, 10), { term: 1, vote: "a", commit: 0 });
  await log.append(entries(11, 20), { term: 1, vote: "a", commit: 10 });
  await log.append(entries(21, 30), { term: 1, vote: "a", commit: 20 });
  await log.close();
  const files = segmentFiles(dir);
  assert.equal(files.length, 1);
  return `${dir}/wal/${files[0]}`;
}

async function assertRecoversTo(dir: string, lastIndex: number): Promise<void> {
  let log = await SegmentLog.open(dir);
  const state = await log.load();
  assert.deepEqual(state.entries, entries(1, lastIndex));
  // The log is usable after recovery: appends continue from the valid tail.
  await log.append(entries(lastIndex + 1, lastIndex + 2, 2), null);
  await log.close();
  log = await SegmentLog.open(dir);
  const again = await log.load();
  assert.equal(again.entries.length, lastIndex + 2);
  assert.equal(again.entries[lastIndex].term, 2);
  await log.close();
}

Deno.test("SegmentLog: a torn tail (cut mid-record) is truncated to the last valid record", () =>
  withDir(async (dir) => {
    const path = await writeThreeBatches(dir);
    // The last 50 bytes never reached the disk: the preallocated zeros are still there.
    await overwrite(path, (await dataEnd(path)) - 50, new Uint8Array(50));
    await assertRecoversTo(dir, 29);
    // The hard state of the torn batch was after entry 30, so the previous one is in force.
  }));

Deno.test("SegmentLog: a garbled byte in the tail fails its checksum and is cut", () =>
  withDir(async (dir) => {
    const path = await writeThreeBatches(dir);
    const buf = await Deno.readFile(path);
    // One record is 8 + 18 + 100 bytes; garble entry 25's data.
    const recordBytes = 126;
    const hardStateBytes = 8 + 18 + 1;
    const at = hardStateBytes + 2 * (10 * recordBytes + hardStateBytes) + 4 * recordBytes + 60;
    buf[at] ^= 0xff;
    await Deno.writeFile(path, buf);
    await assertRecoversTo(dir, 24);
    assert.ok((await Deno.stat(path)).size < buf.length + 2 * recordBytes);
  }));

Deno.test("SegmentLog: a torn tail of a growing (not preallocated) file is cut", () =>
  withDir(async (dir) => {
    const log = await SegmentLog.open(dir, { preallocate: false });
    await log.load();
    await log.append(entries(1, 10), { term: 1, vote: "a", commit: 0 });
    await log.close();
    const [name] = segmentFiles(dir);
    const path = `${dir}/wal/${name}`;
    assert.equal((await Deno.stat(path)).size, await dataEnd(path), "the file ends with its data");
    await Deno.truncate(path, (await Deno.stat(path)).size - 50);
    const reopened = await SegmentLog.open(dir, { preallocate: false });
    assert.deepEqual((await reopened.load()).entries, entries(1, 9));
    await reopened.close();
  }));

Deno.test("SegmentLog: segments are preallocated; their zero-filled rest ends the log, no error", () =>
  withDir(async (dir) => {
    const segmentBytesMax = 64 * 1024;
    const log = await SegmentLog.open(dir, { segmentBytesMax });
    await log.load();
    const [name] = segmentFiles(dir);
    const path = `${dir}/wal/${name}`;
    assert.equal((await Deno.stat(path)).size, segmentBytesMax, "zero-filled to full size");
    await log.append(entries(1, 10), { term: 1, vote: "a", commit: 0 });
    assert.equal((await Deno.stat(path)).size, segmentBytesMax, "appends overwrite in place");
    await log.close();
    const before = await Deno.readFile(path);
    const end = await dataEnd(path);
    assert.ok(before.subarray(end).every((b) => b === 0));
    await assertRecoversTo(dir, 10);
    const after = await Deno.readFile(path);
    assert.equal(after.length, segmentBytesMax, "recovery did not truncate the segment");
    assert.deepEqual(after.subarray(0, end), before.subarray(0, end), "old records untouched");
    assert.ok(await dataEnd(path) > end, "the appends after recovery follow the old records");
  }));

Deno.test("SegmentLog: a stray byte far past the records is damage, not the clean end", () =>
  withDir(async (dir) => {
    const path = await writeThreeBatches(dir);
    const size = (await Deno.stat(path)).size;
    // Past the first MiB-long comparison chunk, in the file's last byte.
    await overwrite(path, size - 1, new Uint8Array([7]));
    await assertRecoversTo(dir, 30);
    assert.ok((await Deno.stat(path)).size < size, "the damaged rest was cut off");
  }));

Deno.test("SegmentLog: many preallocated segments roll over and recover in order", () =>
  withDir(async (dir) => {
    const segmentBytesMax = 4096;
    const log = await SegmentLog.open(dir, { segmentBytesMax });
    await log.load();
    for (let i = 0; i < 20; i++) {
      await log.append(entries(i * 10 + 1, i * 10 + 10), { term: 1, vote: null, commit: i * 10 });
    }
    await log.close();
    const files = segmentFiles(dir);
    assert.ok(files.length >= 6, `expected several segments, got ${files}`);
    for (const f of files) {
      assert.equal((await Deno.stat(`${dir}/wal/${f}`)).size, segmentBytesMax, f);
    }
    // A crash while a spare was being zero-filled leaves it behind; open removes it.
    await Deno.writeFile(`${dir}/wal/spare.wal.tmp`, new Uint8Array(100).fill(1));
    const reopened = await SegmentLog.open(dir, { segmentBytesMax });
    const state = await reopened.load();
    assert.deepEqual(state.entries, entries(1, 200));
    assert.deepEqual(state.hardState, { term: 1, vote: null, commit: 190 });
    await reopened.append(entries(201, 230), null);
    await reopened.close();
    const again = await SegmentLog.open(dir, { segmentBytesMax });
    assert.deepEqual((await again.load()).entries, entries(1, 230));
    await again.close();
  }));

Deno.test("SegmentLog: short of disk space, no spare is zero-filled and new segments grow; with space back, preallocation resumes", () =>
  withDir(async (dir) => {
    const segmentBytesMax = 4096;
    let free = segmentBytesMax; // under the two segments a spare needs
    const freeBytes = () => free;
    const log = await SegmentLog.open(dir, { segmentBytesMax, freeBytes });
    await log.load();
    const spare = `${dir}/wal/spare.wal.tmp`;
    const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
    for (let i = 0; i < 10; i++) {
      await log.append(entries(i * 10 + 1, i * 10 + 10), { term: 1, vote: null, commit: i * 10 });
    }
    const short = segmentFiles(dir);
    assert.ok(short.length >= 3, `expected several segments, got ${short}`);
    assert.equal(await exists(spare), false, "no 16 MiB of zeros held on a nearly full disk");
    // Each segment is only as long as its records (a preallocated one is exactly the maximum).
    for (const f of short.slice(0, -1)) {
      const size = (await Deno.stat(`${dir}/wal/${f}`)).size;
      assert.notEqual(size, segmentBytesMax, `${f} was preallocated`);
    }
    free = 2 * segmentBytesMax;
    for (let i = 10; i < 20; i++) {
      await log.append(entries(i * 10 + 1, i * 10 + 10), { term: 1, vote: null, commit: i * 10 });
    }
    await log.close();
    const later = segmentFiles(dir).slice(short.length + 1);
    assert.ok(later.length >= 2, `expected preallocated segments, got ${later}`);
    for (const f of later) {
      assert.equal((await Deno.stat(`${dir}/wal/${f}`)).size, segmentBytesMax, f);
    }
    const reopened = await SegmentLog.open(dir, { segmentBytesMax, freeBytes });
    assert.deepEqual((await reopened.load()).entries, entries(1, 200));
    await reopened.close();
  }));

Deno.test("SegmentLog: the hard state is recovered from the last valid record", () =>
  withDir(async (dir) => {
    const path = await writeThreeBatches(dir);
    await overwrite(path, (await dataEnd(path)) - 3, new Uint8Array(3));
    const log = await SegmentLog.open(dir);
    const state = await log.load();
    assert.deepEqual(state.hardState, { term: 1, vote: "a", commit: 10 });
    assert.equal(state.entries.length, 30);
    await log.close();
  }));

Deno.test("SegmentLog: segments roll at the size limit and compaction drops whole old ones", () =>
  withDir(async (dir) => {
    const log = await SegmentLog.open(dir, { segmentBytesMax: 2000 });
    await log.load();
    for (let i = 0; i < 20; i++) {
      await log.append(entries(i * 10 + 1, i * 10 + 10), { term: 1, vote: null, commit: i * 10 });
    }
    const before = segmentFiles(dir).length;
    assert.ok(before >= 10, `expected many segments, got ${before}`);
    await log.saveSnapshot({
      meta: {
        index: 150,
        term: 1,
        conf: {
          voters: ["a"],
          learners: [],
          votersOutgoing: [],
          learnersNext: [],
          autoLeave: false,
        },
      },
      data: new Uint8Array([1]),
    });
    await log.compact(150);
    const after = segmentFiles(dir).length;
    assert.ok(after < before / 2, `compaction left ${after} of ${before} segments`);
    await log.close();
    const reopened = await SegmentLog.open(dir, { segmentBytesMax: 2000 });
    const state = await reopened.load();
    assert.deepEqual(state.entries, entries(151, 200));
    assert.deepEqual(state.hardState, { term: 1, vote: null, commit: 190 });
    await reopened.close();
  }));

Deno.test("SegmentLog: a crash after publishing a received snapshot drops the stale log", () =>
  withDir(async (dir) => {
    const log = await SegmentLog.open(dir);
    await log.load();
    await log.append(entries(1, 30, 1), null);
    await log.close();
    // The snapshot file was published, but the log restart never happened.
    const snaps = await SnapshotFiles.open(`${dir}/snap`);
    await snaps.save({
      meta: {
        index: 20,
        term: 5,
        conf: {
          voters: ["a"],
          learners: [],
          votersOutgoing: [],
          learnersNext: [],
          autoLeave: false,
        },
      },
      data: new Uint8Array([9]),
    });
    const reopened = await SegmentLog.open(dir);
    const state = await reopened.load();
    assert.equal(state.snapshot?.meta.index, 20);
    assert.deepEqual(state.entries, []);
    await reopened.append(entries(21, 22, 5), null);
    await reopened.close();
  }));

Deno.test("SnapshotFiles: a corrupt newest snapshot is ignored, not trusted", () =>
  withDir(async (dir) => {
    const snaps = await SnapshotFiles.open(dir);
    const conf = {
      voters: ["a"],
      learners: [],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    };
    await snaps.save({ meta: { index: 5, term: 1, conf }, data: new Uint8Array([1, 2, 3]) });
    const [name] = [...Deno.readDirSync(dir)].map((e) => e.name);
    const buf = await Deno.readFile(`${dir}/${name}`);
    buf[buf.length - 6] ^= 1;
    await Deno.writeFile(`${dir}/${name}`, buf);
    assert.equal(await snaps.loadNewest(), null);
  }));

Deno.test("SnapshotFiles: a large snapshot is written on a worker, byte for byte the same file", () =>
  withDir(async (dir) => {
    const snaps = await SnapshotFiles.open(dir);
    const conf = {
      voters: ["a", "b"],
      learners: [],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    };
    const data = new Uint8Array(WORKER_WRITE_MIN_BYTES + 12345).map((_, i) => (i * 31) & 255);
    const snapshot = { meta: { index: 77, term: 3, conf }, data };
    await snaps.save(snapshot);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.equal(names.length, 1, `only the snapshot is left: ${names}`);
    assert.deepEqual(await Deno.readFile(`${dir}/${names[0]}`), encodeSnapshotFile(snapshot));
    const loaded = await snaps.loadNewest();
    assert.deepEqual(loaded?.meta, snapshot.meta);
    assert.deepEqual(loaded?.data, data);
    assert.equal(data.length, WORKER_WRITE_MIN_BYTES + 12345, "the caller's buffer is intact");
    // Read back by index (on a worker, from this size), and a damaged byte is an error.
    assert.deepEqual(await snaps.loadData(77), data);
    assert.equal(await snaps.loadData(76), null);
    const buf = await Deno.readFile(`${dir}/${names[0]}`);
    buf[buf.length - 1000] ^= 1;
    await Deno.writeFile(`${dir}/${names[0]}`, buf);
    await assert.rejects(snaps.loadData(77), /damaged/);
    assert.equal(await snaps.loadNewest(), null, "at a restart it is skipped, not trusted");
  }));

Deno.test("SegmentLog: appendWaiting is durable on return when its fsync ends within the wait; otherwise, or queued behind another write, it returns a promise", () =>
  withDir(async (dir) => {
    const log = await SegmentLog.open(dir);
    await log.load();
    // The first one also starts the fsync thread: 5 s is ample even on a loaded machine.
    assert.equal(log.appendWaiting(entries(1, 5), null, 5_000), true);
    assert.equal(log.appendWaiting(entries(6, 6), null, 5_000), true);
    // Queued behind a default append (its fsync on the thread pool): nothing is written now.
    const before = log.append(entries(7, 7), null);
    const queued = log.appendWaiting(entries(8, 8), null, 5_000);
    assert.ok(queued instanceof Promise, "queued behind another write, it cannot wait now");
    await Promise.all([before, queued]);
    // No wait at all: an fdatasync takes longer than the check, so at least one of these is
    // still running when appendWaiting returns.
    let promised = 0;
    for (let i = 9; i <= 13; i++) {
      const r = log.appendWaiting(entries(i, i), null, 0);
      if (r !== true) {
        promised++;
        await r;
      }
    }
    assert.ok(promised > 0, "every append was durable with no time to wait");
    assert.equal(log.appendWaiting([], { term: 1, vote: "a", commit: 13 }, 5_000), true);
    await log.close();
    const reopened = await SegmentLog.open(dir);
    const state = await reopened.load();
    assert.deepEqual(state.entries, entries(1, 13));
    assert.deepEqual(state.hardState, { term: 1, vote: "a", commit: 13 });
    await reopened.close();
  }));

Deno.test("zeroFillFile: a new segment's file is exactly the size asked, all zeros, over old bytes too", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/spare`;
    await Deno.writeFile(path, new Uint8Array(3 << 20).fill(0xab)); // longer, and not zeros
    const bytes = 2 * 1024 * 1024 + 12_345; // the last MiB is a partial one
    await zeroFillFile(path, bytes);
    const data = await Deno.readFile(path);
    assert.equal(data.length, bytes);
    assert.ok(data.every((b) => b === 0), "every byte is zero");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
