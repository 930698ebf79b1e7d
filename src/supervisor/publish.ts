/**
 * Publication of a taken snapshot: gzip it into the target while hashing the gzipped bytes,
 * commit it atomically, write its `.sha256`, then `latest.json` (last, so the manifest never
 * names a missing file), then prune what falls beyond `keep`.
 *
 * A snapshot older than the published one is refused: bootstrapping from it would start a new
 * host further behind than necessary, and a supervisor pointed at a reset or wrong LDB must not
 * roll every new host back. A snapshot at the published seq is skipped (same content).
 */
import { Duplex } from "node:stream";
import { createGzip } from "node:zlib";
import { log } from "../util/log.ts";
import { SnapshotError } from "./errors.ts";
import { HashingCounter } from "../util/durable_file.ts";
import {
  buildManifest,
  KEEP_MAX,
  MANIFEST_NAME,
  seqOfSnapshotName,
  sha256FileText,
  type SnapshotEntry,
  snapshotName,
} from "./manifest.ts";
import type { LdbSnapshot } from "./snapshot.ts";
import type { SnapshotTarget } from "./target.ts";

/** gzip level: 3 compresses LDB pages nearly as well as 6 at about twice the speed. */
const GZIP_LEVEL = 3;

/** How to publish. */
export interface PublishOptions {
  /** Snapshots to keep at the target, newest first (1…KEEP_MAX; default 3). */
  keep?: number;
  /** Clock for `createdAt` (tests). */
  now?: () => Date;
}

/** What `publishSnapshot` did. */
export type PublishResult =
  | { published: true; entry: SnapshotEntry; removed: string[]; durationMs: number }
  | { published: false; reason: "unchanged"; publishedSeq: number };

/** Publishes `snapshot` to `target` (see the module comment for the order of writes). */
export async function publishSnapshot(
  snapshot: LdbSnapshot,
  target: SnapshotTarget,
  options: PublishOptions = {},
): Promise<PublishResult> {
  const keep = options.keep ?? 3;
  if (!Number.isInteger(keep) || keep < 1 || keep > KEEP_MAX) {
    throw new RangeError(`keep must be an integer in 1…${KEEP_MAX}, got ${keep}`);
  }
  const started = performance.now();
  const current = await target.readManifest();
  if (current && snapshot.seq < current.seq) {
    throw new SnapshotError(
      "snapshot_stale",
      `Snapshot at seq ${snapshot.seq} is older than the one published at ${target.url} ` +
        `(seq ${current.seq}); not publishing it`,
    );
  }
  if (current && snapshot.seq === current.seq) {
    return { published: false, reason: "unchanged", publishedSeq: current.seq };
  }

  const name = snapshotName(snapshot.seq);
  const counter = new HashingCounter();
  const upload = await target.begin(name);
  try {
    using source = await Deno.open(snapshot.path, { read: true });
    const gzip = Duplex.toWeb(createGzip({ level: GZIP_LEVEL })) as unknown as TransformStream<
      Uint8Array,
      Uint8Array
    >;
    await source.readable.pipeThrough(gzip).pipeThrough(counter.stream()).pipeTo(upload.writable);
    await upload.commit();
  } catch (e) {
    await upload.abort();
    if (e instanceof SnapshotError) throw e;
    throw new SnapshotError(
      "publish_failed",
      `Cannot publish snapshot seq ${snapshot.seq} to ${target.url}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  const entry: SnapshotEntry = {
    file: name,
    seq: snapshot.seq,
    sha256: counter.digestHex(),
    sizeBytes: counter.sizeBytes,
    ldbSizeBytes: snapshot.sizeBytes,
    createdAt: (options.now?.() ?? new Date()).toISOString(),
  };
  await target.putText(`${name}.sha256`, sha256FileText(entry), "text/plain");

  const older = (current?.snapshots ?? []).filter((s) => s.seq < entry.seq && s.file !== name);
  const kept = older.slice(0, keep - 1);
  await target.putText(
    MANIFEST_NAME,
    JSON.stringify(buildManifest(entry, kept), null, 2) + "\n",
    "application/json",
  );
  const removed = await prune(target, [entry, ...kept], older.slice(keep - 1));
  return { published: true, entry, removed, durationMs: performance.now() - started };
}

/**
 * Removes snapshots no longer listed. Listable targets also lose stray snapshot files and the
 * temporary files of an interrupted publication; the manifest's own entries are never removed.
 */
async function prune(
  target: SnapshotTarget,
  kept: readonly SnapshotEntry[],
  dropped: readonly SnapshotEntry[],
): Promise<string[]> {
  const keepNames = new Set(kept.flatMap((e) => [e.file, `${e.file}.sha256`]));
  const doomed = new Set(dropped.flatMap((e) => [e.file, `${e.file}.sha256`]));
  for (const name of (await target.list()) ?? []) {
    if (keepNames.has(name)) continue;
    const base = name.replace(/\.sha256$/, "");
    const stray = seqOfSnapshotName(base) !== undefined;
    const tempFile = /^\.(ldb-\d{20}\.db\.gz(\.sha256)?|latest\.json)\.tmp-[0-9a-f]{8}$/.test(name);
    if (stray || tempFile) doomed.add(name);
  }
  const removed: string[] = [];
  for (const name of doomed) {
    if (keepNames.has(name)) continue;
    try {
      await target.remove(name);
      removed.push(name);
    } catch (e) {
      // Pruning is housekeeping: a failure leaves an extra file, retried next time.
      log("supervisor").warn("Cannot remove old snapshot {name}: {error}", {
        name,
        error: (e as Error).message,
      });
    }
  }
  return removed;
}
