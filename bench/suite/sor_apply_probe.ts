/**
 * The SoR's apply cost without Raft or HTTP, and what one transaction per batch would save:
 *
 *  1. `SorStateMachine.applyEntries` of single-row `mutate` commands, 20 entries per call (the
 *     group-commit batch seen on the leader at 64 clients): µs per entry as the executive pays it.
 *     It commits every 5 ms, as the SoR's timer does (its transaction spans batches).
 *  2. The same SQLite work pattern by hand on a WAL database with synchronous=NORMAL (as the SoR):
 *     an upsert, a ledger insert and an applied-index update per entry, wrapped (a) in a
 *     transaction per entry, `BEGIN IMMEDIATE; SAVEPOINT; …; RELEASE; COMMIT` via `exec`, against
 *     (b) one `BEGIN … COMMIT` per batch of 20 with a savepoint per entry and the applied index
 *     written once: what a COMMIT costs.
 *
 *   deno run -A bench/suite/sor_apply_probe.ts [--entries 10000] [--batch 20] [--rows 1]
 *                                              [--prepared]
 *
 * `--rows N` makes each command N rows (distinct keys), for the per-row cost of 100-row batches.
 * `--prepared` applies as the leader does its own proposals (the command it built and validated
 * beside the bytes), instead of decoding and validating the bytes as a follower does.
 */
import { DatabaseSync } from "node:sqlite";

/** The SoR's default `commitEveryMs`. */
const COMMIT_EVERY_MS = 5;
import { parseArgs } from "node:util";
import { encodeCommand, type SorCommandBody } from "../../src/sor/commands.ts";
import { TestSor } from "../../src/sor/testing.ts";

export interface SorProbe {
  sorApplyUsPerEntry: number;
  perEntryTxUsPerEntry: number;
  perBatchTxUsPerEntry: number;
}

export function probeSorApply(
  entries: number,
  batch: number,
  rows = 1,
  prepared = false,
): SorProbe {
  // 1. The real state machine.
  const t = new TestSor();
  let sorApplyUsPerEntry: number;
  try {
    t.ok({ type: "create_family", family: "bench" });
    t.ok({
      type: "create_tables",
      tables: [{
        family: "bench",
        name: "rows",
        fields: [["k", "string"], ["v", "string"]],
        keyFields: ["k"],
      }],
    });
    t.registerWriter("writer1", "secret-one");
    t.ok({ type: "set_writer_limit", writer: "writer1", rowsPerMinute: 100_000_000 });
    const body = (i: number): SorCommandBody => ({
      type: "mutate",
      family: "bench",
      writer: "writer1",
      mutations: Array.from({ length: rows }, (_, r) => ({
        table: "rows",
        delete: false,
        values: { k: `k${(i * rows + r) % 10_000}`, v: `v${i}` },
      })),
    });
    const make = (i: number) =>
      // The leader applies its own proposals with the command it built beside the bytes.
      prepared ? t.preparedEntry(body(i), t.sor.appliedIndex() + 1 + i) : {
        index: t.sor.appliedIndex() + 1 + i,
        kind: "app" as const,
        data: encodeCommand({ ...body(i), ts: t.ts }),
      };
    const all = Array.from({ length: entries }, (_, i) => make(i));
    const t0 = performance.now();
    // The SoR commits 5 ms after a batch on a timer, which this synchronous loop never lets
    // fire: commit on the same schedule here, so the figure includes its COMMITs.
    let committedAt = t0;
    for (let i = 0; i < all.length; i += batch) {
      const results = t.sor.applyEntries(all.slice(i, i + batch));
      if (results.some((r) => !r?.ok)) throw new Error(`apply failed: ${JSON.stringify(results)}`);
      if (performance.now() - committedAt >= COMMIT_EVERY_MS) {
        t.sor.flush();
        committedAt = performance.now();
      }
    }
    t.sor.flush();
    sorApplyUsPerEntry = ((performance.now() - t0) * 1000) / entries;
  } finally {
    t.dispose();
  }

  // 2. The transaction envelope alone.
  const envelope = (perBatch: boolean): number => {
    const dir = Deno.makeTempDirSync({ prefix: "ctl-sor-probe-" });
    const db = new DatabaseSync(`${dir}/probe.db`);
    try {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec("CREATE TABLE rows (k TEXT PRIMARY KEY, v TEXT)");
      db.exec("CREATE TABLE ledger (seq INTEGER PRIMARY KEY, ts INTEGER, ops TEXT)");
      db.exec("CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER)");
      db.exec("INSERT INTO meta VALUES ('applied', 0)");
      const upsert = db.prepare(
        "INSERT INTO rows (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
      );
      const ledger = db.prepare("INSERT INTO ledger (seq, ts, ops) VALUES (?, ?, ?)");
      const meta = db.prepare("UPDATE meta SET value = ? WHERE name = 'applied'");
      const work = (i: number) => {
        upsert.run(`k${i % 10_000}`, `v${i}`);
        ledger.run(i + 1, Date.now(), `[{"op":"upsert","k":"k${i}"}]`);
      };
      const t0 = performance.now();
      for (let i = 0; i < entries; i += batch) {
        const end = Math.min(entries, i + batch);
        if (perBatch) {
          db.exec("BEGIN IMMEDIATE");
          for (let j = i; j < end; j++) {
            db.exec("SAVEPOINT command");
            work(j);
            db.exec("RELEASE command");
          }
          meta.run(end);
          db.exec("COMMIT");
        } else {
          for (let j = i; j < end; j++) {
            db.exec("BEGIN IMMEDIATE");
            db.exec("SAVEPOINT command");
            work(j);
            db.exec("RELEASE command");
            meta.run(j + 1);
            db.exec("COMMIT");
          }
        }
      }
      return ((performance.now() - t0) * 1000) / entries;
    } finally {
      db.close();
      Deno.removeSync(dir, { recursive: true });
    }
  };
  return {
    sorApplyUsPerEntry,
    perEntryTxUsPerEntry: envelope(false),
    perBatchTxUsPerEntry: envelope(true),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      entries: { type: "string", default: "10000" },
      batch: { type: "string", default: "20" },
      rows: { type: "string", default: "1" },
      prepared: { type: "boolean", default: false },
    },
  });
  const rows = Number(values.rows);
  const r = probeSorApply(Number(values.entries), Number(values.batch), rows, values.prepared);
  console.log(
    `SorStateMachine.applyEntries (${values.prepared ? "leader, prepared" : "from bytes"}), ` +
      `${rows}-row mutate, ${values.batch} per call: ` +
      `${r.sorApplyUsPerEntry.toFixed(0)} µs/entry, ${
        (r.sorApplyUsPerEntry / rows).toFixed(1)
      } µs/row`,
  );
  console.log(
    `same SQLite work, one transaction per entry: ${r.perEntryTxUsPerEntry.toFixed(0)} µs/entry; ` +
      `one per batch of ${values.batch}: ${r.perBatchTxUsPerEntry.toFixed(0)} µs/entry`,
  );
}
