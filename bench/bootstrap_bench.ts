/**
 * Snapshot and bootstrap figures on an LDB of a chosen size:
 *  - build an LDB of `--size-mb` MB (rows in `bench___rows`, half random, half repetitive text,
 *    so gzip works about as hard as on real control data);
 *  - start a concurrent writer process that behaves like the reflector (one small write
 *    transaction every `--write-every-ms`, fsync each, a PASSIVE checkpoint every second and a
 *    TRUNCATE checkpoint every 2 s as when idle), timing each operation;
 *  - take an online snapshot (VACUUM INTO) and publish it gzipped to a file:// directory while
 *    that writer runs; report the writer's longest pause during the snapshot vs before it;
 *  - bootstrap a new LDB from the publication and time it.
 *
 *   deno run -A bench/bootstrap_bench.ts [--size-mb 1024] [--dir DIR] [--write-every-ms 5]
 *     [--flush-every-ms 50]  background flush of the copy (0: off, to compare)
 *     [--copy-dir /dev/shm]  where the uncompressed copy goes (another disk removes contention)
 *     [--nice 10]            CPU priority of the snapshotting process
 *     [--keep-files]
 *
 * The writer's TRUNCATE every 2 s is harsher than the reflector (which truncates only when
 * idle): it shows the bounded wait a TRUNCATE has while a snapshot holds its read transaction.
 *
 * Targets: bootstrap ≤ 30 s for 1 GB; writer pause during the snapshot ≤ 100 ms.
 */
import { randomBytes } from "node:crypto";
import { setPriority } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { bootstrapLdb } from "../src/bootstrap/bootstrap.ts";
import { LdbWriter, TRUNCATE_BUSY_TIMEOUT_MS } from "../src/ldb/writer.ts";
import { publishSnapshot } from "../src/supervisor/publish.ts";
import { takeLdbSnapshot } from "../src/supervisor/snapshot.ts";
import { openTarget } from "../src/supervisor/target.ts";

const FAMILY = "bench";
const TABLE = "rows";
const PAYLOAD_BYTES = 1_000;
/** Rows per bulk transaction while building the LDB. */
const BUILD_BATCH_ROWS = 20_000;

interface Op {
  kind: "write" | "passive" | "truncate";
  /** Unix ms at the start of the operation. */
  startMs: number;
  durationMs: number;
}

const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The concurrent writer: runs until stdin closes, then prints its ops as JSON. */
async function writerMain(ldbPath: string, everyMs: number): Promise<void> {
  const writer = LdbWriter.open(ldbPath);
  const ops: Op[] = [];
  let stopped = false;
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* drain until the parent closes it */ }
    stopped = true;
  })();
  const timed = (kind: Op["kind"], fn: () => void) => {
    const startMs = nowMs();
    const t0 = performance.now();
    fn();
    ops.push({ kind, startMs, durationMs: performance.now() - t0 });
  };
  let lastPassive = performance.now();
  let lastTruncate = performance.now();
  let id = 0;
  console.error("writer ready");
  while (!stopped) {
    const seq = writer.seq + 1;
    timed("write", () =>
      writer.applyBatch([{
        seq,
        ts: Date.now(),
        family: null,
        ops: [{
          op: "upsert",
          family: FAMILY,
          table: TABLE,
          values: { id: -1 - (id++ % 1000), payload: `live ${seq}` },
        }],
      }]));
    if (performance.now() - lastPassive >= 1_000) {
      lastPassive = performance.now();
      timed("passive", () => writer.checkpoint("PASSIVE"));
    }
    if (performance.now() - lastTruncate >= 2_000) {
      lastTruncate = performance.now();
      timed("truncate", () => writer.checkpoint("TRUNCATE"));
    }
    await sleep(everyMs);
  }
  writer.close();
  await Deno.stdout.write(new TextEncoder().encode(JSON.stringify(ops)));
}

/** Builds an LDB of about `sizeMb` MB; returns its seq. */
function buildLdb(path: string, sizeMb: number): number {
  const writer = LdbWriter.open(path);
  writer.applyBatch([{
    seq: 1,
    ts: Date.now(),
    family: null,
    ops: [{
      op: "create_table",
      family: FAMILY,
      table: TABLE,
      fields: [["id", "integer"], ["payload", "text"]],
      keyFields: ["id"],
    }],
  }]);
  writer.close();
  // Bulk rows go straight in through SQL: the writer's per-op path would only slow the set-up.
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF");
  const insert = db.prepare(`INSERT INTO ${FAMILY}___${TABLE} (id, payload) VALUES (?, ?)`);
  const rows = Math.ceil((sizeMb * 1024 * 1024) / (PAYLOAD_BYTES + 40));
  const filler = "abcdefghij".repeat(PAYLOAD_BYTES / 20);
  for (let done = 0; done < rows;) {
    db.exec("BEGIN");
    const n = Math.min(BUILD_BATCH_ROWS, rows - done);
    const random = randomBytes(n * PAYLOAD_BYTES / 4).toString("hex");
    for (let i = 0; i < n; i++) {
      const part = random.slice(i * PAYLOAD_BYTES / 2, (i + 1) * PAYLOAD_BYTES / 2);
      insert.run(done + i, part + filler);
    }
    db.exec("COMMIT");
    done += n;
  }
  db.exec("UPDATE _ldb_seq SET seq = 2 WHERE id = 1");
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  // Flush the bulk load now, so its writeback does not count against the measured writer.
  using file = Deno.openSync(path, { read: true, write: true });
  file.syncSync();
  return 2;
}

function stats(ops: Op[]): string {
  if (ops.length === 0) return "none";
  const d = ops.map((o) => o.durationMs).sort((a, b) => a - b);
  const p = (q: number) => d[Math.min(d.length - 1, Math.floor(d.length * q))].toFixed(1);
  const over50 = d.filter((x) => x > 50).length;
  return `n=${d.length} p50 ${p(0.5)} ms  p99 ${p(0.99)} ms  max ${d[d.length - 1].toFixed(1)} ms` +
    `  >50ms: ${over50}`;
}

/** Longest time between the end of one write and the end of the next, minus the sleep. */
function longestGapMs(ops: Op[], everyMs: number): number {
  const writes = ops.filter((o) => o.kind === "write");
  let gap = 0;
  for (let i = 1; i < writes.length; i++) {
    const prevEnd = writes[i - 1].startMs + writes[i - 1].durationMs;
    const end = writes[i].startMs + writes[i].durationMs;
    gap = Math.max(gap, end - prevEnd - everyMs);
  }
  return gap;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "size-mb": { type: "string", default: "1024" },
      dir: { type: "string" },
      "write-every-ms": { type: "string", default: "5" },
      writer: { type: "string" },
      "keep-files": { type: "boolean", default: false },
      "copy-dir": { type: "string" },
      "flush-every-ms": { type: "string", default: "50" },
      nice: { type: "string", default: "0" },
    },
  });
  const everyMs = Number(values["write-every-ms"]);
  if (values.writer) return await writerMain(values.writer, everyMs);

  const sizeMb = Number(values["size-mb"]);
  const dir = values.dir ?? Deno.makeTempDirSync({ prefix: "ctl-bootstrap-bench-" });
  Deno.mkdirSync(dir, { recursive: true });
  const ldb = join(dir, "ldb.db");
  const pub = join(dir, "pub");
  try {
    let t0 = performance.now();
    buildLdb(ldb, sizeMb);
    const ldbBytes = Deno.statSync(ldb).size;
    console.log(
      `build: ${(ldbBytes / 1e6).toFixed(0)} MB LDB in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );

    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        import.meta.filename!,
        "--writer",
        ldb,
        "--write-every-ms",
        String(everyMs),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = child.stderr.getReader();
    // Wait until the writer runs, then give it a baseline second before the snapshot.
    await stderr.read();
    await sleep(3_000);

    // The supervisor process's CPU priority (as `ctl supervisor --nice`); the writer keeps 0.
    setPriority(Number(values.nice));
    const snapStartMs = nowMs();
    t0 = performance.now();
    const copyPath = join(values["copy-dir"] ?? dir, `ctl-bench-copy-${Deno.pid}.db`);
    const snap = await takeLdbSnapshot(ldb, copyPath, {
      flushEveryMs: Number(values["flush-every-ms"]),
    });
    const copyMs = performance.now() - t0;
    const snapEndMs = nowMs();
    t0 = performance.now();
    const published = await publishSnapshot(snap, openTarget(`file://${pub}`));
    const publishMs = performance.now() - t0;
    const publishEndMs = nowMs();
    await sleep(2_500); // a TRUNCATE checkpoint after the snapshot, to see the WAL shrink again
    const walAfter = Deno.statSync(ldb + "-wal").size;
    const writerStdin = child.stdin.getWriter();
    await writerStdin.close();
    const out = await new Response(child.stdout).text();
    await stderr.cancel();
    await child.status;
    const ops = JSON.parse(out) as Op[];

    const during = ops.filter((o) =>
      o.startMs + o.durationMs >= snapStartMs && o.startMs <= snapEndMs
    );
    const duringPublish = ops.filter((o) =>
      o.startMs + o.durationMs >= snapEndMs && o.startMs <= publishEndMs
    );
    const before = ops.filter((o) => o.startMs + o.durationMs < snapStartMs);
    if (!published.published) throw new Error("nothing published");
    console.log(
      `snapshot: copy (VACUUM INTO) ${(copyMs / 1000).toFixed(2)} s = ` +
        `${(snap.sizeBytes / 1e6 / (copyMs / 1000)).toFixed(0)} MB/s; gzip+publish ` +
        `${(publishMs / 1000).toFixed(2)} s; ${
          (published.entry.sizeBytes / 1e6).toFixed(0)
        } MB gzipped ` +
        `(seq ${snap.seq})`,
    );
    const kinds = ["write", "passive", "truncate"] as const;
    for (const kind of kinds) {
      console.log(
        `writer ${kind.padEnd(8)} before snapshot: ${stats(before.filter((o) => o.kind === kind))}`,
      );
      console.log(
        `writer ${kind.padEnd(8)} during copy:     ${stats(during.filter((o) => o.kind === kind))}`,
      );
      console.log(
        `writer ${kind.padEnd(8)} during publish:  ${
          stats(duringPublish.filter((o) => o.kind === kind))
        }`,
      );
    }
    const maxOf = (list: Op[]) => Math.max(0, ...list.map((o) => o.durationMs));
    const writesDuring = [...during, ...duringPublish].filter((o) => o.kind === "write");
    const checkpointsDuring = [...during, ...duringPublish].filter((o) => o.kind !== "write");
    console.log(
      `writer pause while snapshotting (copy + publish): longest write transaction ` +
        `${maxOf(writesDuring).toFixed(1)} ms (target ≤ 100 ms), longest checkpoint ` +
        `${
          maxOf(checkpointsDuring).toFixed(1)
        } ms (TRUNCATE waits ≤ ${TRUNCATE_BUSY_TIMEOUT_MS} ms for the snapshot's ` +
        `read transaction, then gives up), longest gap between writes ` +
        `${longestGapMs([...during, ...duringPublish], everyMs).toFixed(1)} ms; WAL after: ` +
        `${walAfter} bytes`,
    );

    Deno.removeSync(copyPath);
    const target = join(dir, "new", "ldb.db");
    t0 = performance.now();
    const result = await bootstrapLdb({ url: `file://${pub}`, ldbPath: target });
    const bootMs = performance.now() - t0;
    console.log(
      `bootstrap: ${(result.ldbSizeBytes / 1e6).toFixed(0)} MB LDB (seq ${result.seq}) in ` +
        `${(bootMs / 1000).toFixed(2)} s = ${
          (result.ldbSizeBytes / 1e6 / (bootMs / 1000)).toFixed(0)
        } MB/s ` +
        `(target ≤ 30 s for 1 GB)`,
    );
  } finally {
    if (!values["keep-files"]) Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
