import assert from "node:assert/strict";
import { join } from "node:path";
import type { SeqChangedRow } from "../ldb/writer.ts";
import { Changelog } from "./changelog.ts";

function row(seq: number, id: number): SeqChangedRow {
  return {
    seq,
    family: "fam",
    table: "items",
    key: [{ name: "id", type: "INTEGER", value: id }],
  };
}

function lines(path: string): { seq: number }[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter((l) => l).map((l) => JSON.parse(l));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

Deno.test("changelog lines have ctlstore's shape with the ledger seq", () => {
  const dir = Deno.makeTempDirSync();
  const path = join(dir, "sub", "changes.log");
  const log = Changelog.open({ path, rotateBytes: 1 << 20, filesMax: 3 }, 0);
  log.append([row(1, 1234), row(1, 5)]);
  log.close();
  assert.deepEqual(lines(path), [
    { seq: 1, family: "fam", table: "items", key: [{ name: "id", type: "INTEGER", value: 1234 }] },
    { seq: 1, family: "fam", table: "items", key: [{ name: "id", type: "INTEGER", value: 5 }] },
  ]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("reopening cuts lines past the applied seq and a torn last line", () => {
  const dir = Deno.makeTempDirSync();
  const path = join(dir, "changes.log");
  const log = Changelog.open({ path, rotateBytes: 1 << 20, filesMax: 3 }, 0);
  log.append([row(1, 1), row(2, 2), row(2, 3)]);
  log.append([row(3, 4), row(4, 5)]); // written, but (say) the LDB commit never happened
  log.close();
  Deno.writeTextFileSync(path, '{"seq":4,"fam', { append: true }); // torn by kill -9
  const again = Changelog.open({ path, rotateBytes: 1 << 20, filesMax: 3 }, 2);
  assert.deepEqual(lines(path).map((l) => l.seq), [1, 2, 2]);
  again.append([row(3, 4)]);
  again.close();
  assert.deepEqual(lines(path).map((l) => l.seq), [1, 2, 2, 3]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("rotation renames FILE to FILE.1…N between batches and keeps every line", () => {
  const dir = Deno.makeTempDirSync();
  const path = join(dir, "changes.log");
  const log = Changelog.open({ path, rotateBytes: 200, filesMax: 10 }, 0);
  for (let seq = 1; seq <= 20; seq++) log.append([row(seq, seq), row(seq, seq + 100)]);
  log.close();
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.ok(files.length > 3, `rotated: ${files}`);
  const rotated = files.filter((f) => f !== "changes.log")
    .map((f) => Number(f.split(".").pop())).sort((a, b) => b - a);
  const all = [...rotated.map((n) => `${path}.${n}`), path].flatMap(lines);
  assert.deepEqual(
    all.map((l) => l.seq),
    Array.from({ length: 20 }, (_, i) => [i + 1, i + 1]).flat(),
  );
  // A seq's lines never straddle two files.
  for (const f of [...rotated.map((n) => `${path}.${n}`), path]) {
    const seqs = lines(f).map((l) => l.seq);
    assert.equal(seqs.length % 2, 0, f);
  }
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("rotation keeps at most filesMax rotated files", () => {
  const dir = Deno.makeTempDirSync();
  const path = join(dir, "changes.log");
  const log = Changelog.open({ path, rotateBytes: 50, filesMax: 2 }, 0);
  for (let seq = 1; seq <= 10; seq++) log.append([row(seq, seq)]);
  log.close();
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
    "changes.log",
    "changes.log.1",
    "changes.log.2",
  ]);
  assert.deepEqual(lines(path).map((l) => l.seq), [10]);
  assert.deepEqual(lines(`${path}.1`).map((l) => l.seq), [9]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("a rotated changelog past the LDB's seq (LDB replaced) is refused, not cut", () => {
  const dir = Deno.makeTempDirSync();
  const path = join(dir, "changes.log");
  const log = Changelog.open({ path, rotateBytes: 50, filesMax: 5 }, 0);
  for (let seq = 1; seq <= 4; seq++) log.append([row(seq, seq)]);
  log.close();
  assert.throws(
    () => Changelog.open({ path, rotateBytes: 50, filesMax: 5 }, 1),
    /changes\.log\.1 reaches seq 3 but the LDB is at seq 1/,
  );
  assert.deepEqual(lines(`${path}.1`).map((l) => l.seq), [3]);
  Changelog.open({ path, rotateBytes: 50, filesMax: 5 }, 4).close();
  Deno.removeSync(dir, { recursive: true });
});
