/**
 * `GET /v1/snapshot`: an LDB built from this executive's SoR, so a cluster without a supervisor
 * can still bootstrap reflectors (and reflectors behind the ledger retention window can recover).
 *
 * The SoR's data tables have the LDB's layout (both are written by src/ledger/sql.ts), so an LDB
 * is the SoR's consistent copy (`VACUUM INTO`, from a read transaction of its own) minus the
 * SoR-only tables, plus `_ldb_seq`/`_ldb_last_update` taken from the copy's own ledger: the seq
 * always matches the contents. The gzipped result is cached and rebuilt when the ledger moved on.
 */
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import {
  BOOKKEEPING_DDL,
  formatLdbTimestamp,
  LDB_LAST_UPDATE_TABLE,
  LDB_LEDGER_UPDATE_NAME,
  LDB_SEQ_ID,
  LDB_SEQ_TABLE,
} from "../ldb/bookkeeping.ts";
import { quoteIdent } from "../ledger/sql.ts";
import { CREATED_AT_HEADER, SEQ_HEADER, SHA256_HEADER } from "../supervisor/manifest.ts";
import { log } from "../util/log.ts";
import { execInWorker, sqlString } from "../util/sqlite_worker.ts";
import { writeAll } from "../util/write_all.ts";

/** A built snapshot. */
export interface BuiltSnapshot {
  /** The gzipped LDB. */
  path: string;
  seq: number;
  sha256: string;
  sizeBytes: number;
  createdAt: string;
}

/**
 * Builds an LDB from the SoR at `sorPath` into `outPath` (uncompressed); returns its seq. The
 * copy, the drops and the final VACUUM run on a worker thread: on a large SoR they take seconds,
 * and this executive's Raft loop and HTTP server must not wait for them.
 */
export async function buildLdbFromSor(sorPath: string, outPath: string): Promise<number> {
  await execInWorker(sorPath, [`VACUUM INTO ${sqlString(outPath)}`], {
    readOnly: true,
    flush: outPath,
  });
  let last: { seq: number; ts: number } | undefined;
  let tables: { name: string }[];
  const copy = new DatabaseSync(outPath, { readOnly: true });
  try {
    last = copy.prepare("SELECT seq, ts FROM _ctl_ledger ORDER BY seq DESC LIMIT 1").get() as
      | { seq: number; ts: number }
      | undefined;
    tables = copy.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    ).all() as { name: string }[];
  } finally {
    copy.close();
  }
  const seq = Number(last?.seq ?? 0);
  const statements = [
    "BEGIN",
    ...tables.filter(({ name }) => !name.includes("___")).map(({ name }) =>
      `DROP TABLE ${quoteIdent(name)}`
    ),
    ...BOOKKEEPING_DDL,
    `INSERT INTO ${LDB_SEQ_TABLE} (id, seq) VALUES (${LDB_SEQ_ID}, ${seq})`,
    ...(last
      ? [
        `INSERT INTO ${LDB_LAST_UPDATE_TABLE} (name, timestamp) VALUES (` +
        `${sqlString(LDB_LEDGER_UPDATE_NAME)}, ${sqlString(formatLdbTimestamp(Number(last.ts)))})`,
      ]
      : []),
    "COMMIT",
    "VACUUM",
  ];
  await execInWorker(outPath, statements, { flush: outPath });
  return seq;
}

async function gzipFile(
  inPath: string,
  outPath: string,
): Promise<{ sha256: string; size: number }> {
  const input = await Deno.open(inPath, { read: true });
  const output = await Deno.open(outPath, { write: true, create: true, truncate: true });
  const hash = createHash("sha256");
  let size = 0;
  try {
    const gz = input.readable.pipeThrough(new CompressionStream("gzip"));
    for await (const chunk of gz) {
      hash.update(chunk);
      size += chunk.length;
      await writeAll(output, chunk);
    }
    await output.sync();
  } finally {
    output.close();
  }
  return { sha256: hash.digest("hex"), size };
}

/** Builds, caches and serves LDB snapshots of one SoR. */
export class LdbSnapshotter {
  #latest: BuiltSnapshot | null = null;
  #building: Promise<BuiltSnapshot> | null = null;
  #generation = 0;

  constructor(
    readonly sorPath: string,
    readonly workDir: string,
    readonly lastSeq: () => number,
    /** A cached snapshot this fresh is served even if the ledger moved on since. */
    readonly reuseMs = 5_000,
  ) {}

  /** The newest snapshot, built now if there is none or the ledger moved on. */
  latest(): Promise<BuiltSnapshot> {
    const cached = this.#latest;
    if (
      cached &&
      (cached.seq >= this.lastSeq() || Date.now() - Date.parse(cached.createdAt) < this.reuseMs)
    ) {
      return Promise.resolve(cached);
    }
    this.#building ??= this.#build().finally(() => this.#building = null);
    return this.#building;
  }

  async #build(): Promise<BuiltSnapshot> {
    await Deno.mkdir(this.workDir, { recursive: true });
    const generation = ++this.#generation;
    const raw = `${this.workDir}/ldb-${generation}.db`;
    const gz = `${this.workDir}/ldb-${generation}.db.gz`;
    const started = performance.now();
    try {
      const seq = await buildLdbFromSor(this.sorPath, raw);
      const { sha256, size } = await gzipFile(raw, gz);
      const previous = this.#latest;
      this.#latest = {
        path: gz,
        seq,
        sha256,
        sizeBytes: size,
        createdAt: new Date().toISOString(),
      };
      // Responses still streaming the previous file keep their open handle; the name can go.
      if (previous) await Deno.remove(previous.path).catch(() => {});
      log("executive").info("Built LDB snapshot at seq {seq}: {size} bytes in {ms} ms", {
        seq,
        size,
        ms: Math.round(performance.now() - started),
      });
      return this.#latest;
    } finally {
      await Deno.remove(raw).catch(() => {});
    }
  }

  /** The HTTP answer: the gzipped LDB with its seq and checksum in headers. */
  async response(): Promise<Response> {
    let snap: BuiltSnapshot;
    let file: Deno.FsFile;
    try {
      snap = await this.latest();
      file = await Deno.open(snap.path, { read: true });
    } catch (e) {
      log("executive").error("Cannot build an LDB snapshot: {error}", { error: String(e) });
      return Response.json({
        error: {
          code: "snapshot_unavailable",
          message: `Cannot build an LDB snapshot: ${(e as Error).message}`,
        },
      }, { status: 503, headers: { "retry-after": "1" } });
    }
    return new Response(file.readable, {
      headers: {
        "content-type": "application/gzip",
        "content-length": String(snap.sizeBytes),
        [SEQ_HEADER]: String(snap.seq),
        [SHA256_HEADER]: snap.sha256,
        [CREATED_AT_HEADER]: snap.createdAt,
      },
    });
  }
}
