/**
 * Bootstrap: install the newest published LDB snapshot so a new host replays only the ledger
 * after the snapshot's seq instead of all of it.
 *
 * One try: open the snapshot, stream it through SHA-256 and gunzip into a temporary file beside
 * the LDB, fsync it, check the hash (and size) against the published one, check the file opens
 * as SQLite with `_ldb_seq` equal to the published seq, then link it into place. A try that fails
 * anywhere removes its temporary file and leaves any existing LDB untouched. Up to `retries`
 * tries with exponential backoff; after the last, a BootstrapError whose code is the last
 * failure's. Falling back to a full replay is the caller's decision.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { log } from "../util/log.ts";
import {
  exists,
  fileSink,
  HashingCounter,
  removeQuietly,
  syncDir,
  tempPathBeside,
} from "../util/durable_file.ts";
import { BootstrapError, isRetryable } from "./errors.ts";
import { openSnapshotSource, type SnapshotSource } from "./source.ts";
import { sleep } from "../util/sleep.ts";

/** Most tries allowed. */
export const RETRIES_MAX = 20;
/** Default limit on the decompressed LDB (64 GiB): a runaway stream must not fill the disk. */
export const LDB_BYTES_MAX_DEFAULT = 64 * 1024 ** 3;

/** A progress report: phase, try number and bytes so far (gzipped bytes while downloading). */
export interface BootstrapProgress {
  phase: "download" | "verify" | "install" | "retry";
  attempt: number;
  bytesDone: number;
  /** Known when the size was published. */
  bytesTotal?: number;
  /** For "retry": why the last try failed. */
  error?: BootstrapError;
}

/** What to bootstrap from and to. */
export interface BootstrapOptions {
  /** `file:///DIR`, `http(s)://prefix/` (manifest) or `http(s)://host/v1/snapshot`. */
  url: string;
  ldbPath: string;
  /** Tries in all (default 5, at most RETRIES_MAX). */
  retries?: number;
  /** Replace an existing LDB (default false: an existing LDB is an error `ldb_exists`). */
  overwrite?: boolean;
  onProgress?: (progress: BootstrapProgress) => void;
  /** First pause between tries, doubled each time up to `backoffMaxMs` (default 500). */
  backoffMs?: number;
  backoffMaxMs?: number;
  /** Time limit of one try (default 10 minutes). */
  tryTimeoutMs?: number;
  /** Limit on the decompressed size. */
  ldbBytesMax?: number;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

/** A successful bootstrap. */
export interface BootstrapResult {
  /** `_ldb_seq` of the installed LDB: replay the ledger after it. */
  seq: number;
  /** Gzipped bytes downloaded (last try). */
  sizeBytes: number;
  /** Size of the installed LDB. */
  ldbSizeBytes: number;
  attempts: number;
  durationMs: number;
  /** Where the snapshot came from. */
  source: string;
}

/** Installs the newest snapshot at `options.url` as `options.ldbPath`; see the module comment. */
export async function bootstrapLdb(options: BootstrapOptions): Promise<BootstrapResult> {
  const retries = options.retries ?? 5;
  if (!Number.isInteger(retries) || retries < 1 || retries > RETRIES_MAX) {
    throw new RangeError(`retries must be an integer in 1…${RETRIES_MAX}, got ${retries}`);
  }
  const started = performance.now();
  let delayMs = options.backoffMs ?? 500;
  const delayMaxMs = options.backoffMaxMs ?? 8_000;
  let last: BootstrapError | undefined;
  for (let attempt = 1; attempt <= retries; attempt++) {
    try {
      const result = await tryOnce(options, attempt);
      return { ...result, attempts: attempt, durationMs: performance.now() - started };
    } catch (e) {
      last = e instanceof BootstrapError ? e : new BootstrapError(
        "fetch_failed",
        (e as Error).message ?? String(e),
        { cause: e },
      );
      if (options.signal?.aborted && last.code !== "aborted") {
        last = new BootstrapError("aborted", `Bootstrap aborted: ${last.message}`, { cause: e });
      }
      last.attempts = attempt;
      if (!isRetryable(last.code) || attempt === retries) break;
      log("bootstrap").warn("Bootstrap try {attempt}/{retries} failed ({code}): {message}", {
        attempt,
        retries,
        code: last.code,
        message: last.message,
      });
      options.onProgress?.({ phase: "retry", attempt, bytesDone: 0, error: last });
      await sleep(delayMs, options.signal);
      delayMs = Math.min(delayMs * 2, delayMaxMs);
    }
  }
  const error = last!;
  const final = new BootstrapError(
    error.code,
    `Bootstrap of "${options.ldbPath}" from ${options.url} failed after ${error.attempts} ` +
      `${error.attempts === 1 ? "try" : "tries"}: ${error.message}`,
    { cause: error },
  );
  final.attempts = error.attempts;
  throw final;
}

async function tryOnce(
  options: BootstrapOptions,
  attempt: number,
): Promise<Omit<BootstrapResult, "attempts" | "durationMs">> {
  const { ldbPath } = options;
  if (!options.overwrite && await exists(ldbPath)) {
    throw new BootstrapError("ldb_exists", `LDB "${ldbPath}" already exists; not replacing it`);
  }
  const timeout = AbortSignal.timeout(options.tryTimeoutMs ?? 10 * 60_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const source = await openSnapshotSource(options.url, {
    fetch: options.fetch ?? fetch,
    signal,
  });
  mkdirSync(dirname(ldbPath), { recursive: true });
  const tmp = tempPathBeside(ldbPath, "bootstrap");
  try {
    const { sizeBytes, ldbSizeBytes } = await download(source, tmp, options, attempt);
    options.onProgress?.({ phase: "verify", attempt, bytesDone: sizeBytes });
    verifyLdb(tmp, source);
    options.onProgress?.({ phase: "install", attempt, bytesDone: sizeBytes });
    await install(tmp, ldbPath, options.overwrite ?? false);
    return { seq: source.seq, sizeBytes, ldbSizeBytes, source: source.where };
  } finally {
    await removeQuietly(tmp).catch(() => {});
    for (const suffix of ["-wal", "-shm", "-journal"]) {
      await removeQuietly(tmp + suffix).catch(() => {});
    }
  }
}

/** Streams the snapshot through the hash and gunzip into `tmp`; checks hash and sizes. */
async function download(
  source: SnapshotSource,
  tmp: string,
  options: BootstrapOptions,
  attempt: number,
): Promise<{ sizeBytes: number; ldbSizeBytes: number }> {
  const ldbBytesMax = options.ldbBytesMax ?? LDB_BYTES_MAX_DEFAULT;
  if (source.ldbSizeBytes !== undefined && source.ldbSizeBytes > ldbBytesMax) {
    await source.body.cancel();
    throw new BootstrapError(
      "too_large",
      `Snapshot at ${source.where} is ${source.ldbSizeBytes} bytes; the limit is ${ldbBytesMax}`,
    );
  }
  const counter = new HashingCounter();
  let ldbSizeBytes = 0;
  const limit = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      ldbSizeBytes += chunk.byteLength;
      if (ldbSizeBytes > ldbBytesMax) {
        controller.error(
          new BootstrapError(
            "too_large",
            `Snapshot at ${source.where} exceeds ${ldbBytesMax} bytes`,
          ),
        );
        return;
      }
      controller.enqueue(chunk);
    },
  });
  let lastReportBytes = 0;
  const report = (bytesDone: number) => {
    // Reports every 1 MiB: often enough for a bar, rarely enough to cost nothing.
    if (bytesDone - lastReportBytes < 1 << 20) return;
    lastReportBytes = bytesDone;
    options.onProgress?.({
      phase: "download",
      attempt,
      bytesDone,
      bytesTotal: source.sizeBytes,
    });
  };
  using file = await Deno.open(tmp, { write: true, createNew: true });
  try {
    await source.body
      .pipeThrough(counter.stream(report))
      .pipeThrough(
        new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
      )
      .pipeThrough(limit)
      .pipeTo(fileSink(file));
  } catch (e) {
    if (e instanceof BootstrapError) throw e;
    if (options.signal?.aborted) throw new BootstrapError("aborted", "Bootstrap aborted");
    const text = (e as Error).message ?? String(e);
    // A read error of the body is a fetch failure; anything else is the gzip stream refusing.
    const code = /corrupt|gzip|checksum|invalid|write whole buffer|unexpected end/i.test(text)
      ? "bad_snapshot"
      : "fetch_failed";
    throw new BootstrapError(
      code,
      `Cannot download and decompress ${source.where}: ${text}`,
      { cause: e },
    );
  }
  options.onProgress?.({
    phase: "download",
    attempt,
    bytesDone: counter.sizeBytes,
    bytesTotal: source.sizeBytes,
  });
  const sha256 = counter.digestHex();
  if (sha256 !== source.sha256) {
    throw new BootstrapError(
      "checksum_mismatch",
      `Snapshot ${source.where} has SHA-256 ${sha256}, published ${source.sha256}`,
    );
  }
  if (source.sizeBytes !== undefined && source.sizeBytes !== counter.sizeBytes) {
    throw new BootstrapError(
      "checksum_mismatch",
      `Snapshot ${source.where} is ${counter.sizeBytes} bytes, published ${source.sizeBytes}`,
    );
  }
  await file.sync();
  return { sizeBytes: counter.sizeBytes, ldbSizeBytes };
}

/** Checks the file is SQLite, has `_ldb_seq`, and holds the published seq. */
function verifyLdb(path: string, source: SnapshotSource): void {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    const table = db.prepare(
      "SELECT 1 AS ok FROM sqlite_master WHERE type = 'table' AND name = '_ldb_seq'",
    ).get();
    if (!table) {
      throw new BootstrapError("bad_snapshot", `Snapshot ${source.where} is not an LDB`);
    }
    const row = db.prepare("SELECT seq FROM _ldb_seq WHERE id = 1").get() as
      | { seq: number | bigint }
      | undefined;
    const seq = row ? Number(row.seq) : 0;
    if (seq !== source.seq) {
      throw new BootstrapError(
        "bad_snapshot",
        `Snapshot ${source.where} holds seq ${seq}, published as seq ${source.seq}`,
      );
    }
  } catch (e) {
    if (e instanceof BootstrapError) throw e;
    throw new BootstrapError(
      "bad_snapshot",
      `Snapshot ${source.where} is not a readable SQLite database: ${(e as Error).message}`,
      { cause: e },
    );
  } finally {
    db?.close();
  }
}

/**
 * Puts the verified file in place. Without overwrite, a hard link refuses atomically if an LDB
 * appeared meanwhile (a reflector started elsewhere). Any WAL, shared-memory or journal file left
 * at the LDB's path goes first: SQLite would otherwise replay that old WAL onto the new file.
 * Bootstrapping a path that a running reflector has open is not supported.
 */
async function install(tmp: string, ldbPath: string, overwrite: boolean): Promise<void> {
  try {
    if (overwrite || !(await exists(ldbPath))) {
      // Without the LDB these are orphans; with overwrite they belong to the file replaced.
      for (const suffix of ["-wal", "-shm", "-journal"]) await removeQuietly(ldbPath + suffix);
    }
    if (overwrite) await Deno.rename(tmp, ldbPath);
    else await Deno.link(tmp, ldbPath);
    await syncDir(dirname(ldbPath));
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new BootstrapError(
        "ldb_exists",
        `LDB "${ldbPath}" appeared meanwhile; not replacing it`,
      );
    }
    throw new BootstrapError(
      "install_failed",
      `Cannot install the snapshot as "${ldbPath}": ${(e as Error).message}`,
      { cause: e },
    );
  }
}
