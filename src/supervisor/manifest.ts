/**
 * The published-snapshot format shared by the supervisor (writer) and bootstrap (reader).
 *
 * A snapshot target (a `file://` directory or an `http(s)://` prefix) holds:
 *  - `ldb-<seq, 20 digits>.db.gz`: the gzipped LDB (a `VACUUM INTO` copy, rollback journal mode);
 *  - `<that name>.sha256`: `sha256sum` format, `<hex>  <name>\n`, over the published (gzipped)
 *    bytes, so `sha256sum -c` checks a download by hand;
 *  - `latest.json`: the manifest below, written last, so it never names a missing file.
 *
 * The executive's `GET /v1/snapshot` answers with the gzipped LDB itself and the manifest's
 * facts as headers (`X-Ctl-Seq`, `X-Ctl-Sha256`, `Content-Length`).
 */
import { z } from "zod";

/** Manifest name inside a target. */
export const MANIFEST_NAME = "latest.json";
/** Largest manifest a reader accepts (it lists at most KEEP_MAX snapshots). */
export const MANIFEST_BYTES_MAX = 256 * 1024;
/** Most snapshots a target keeps. */
export const KEEP_MAX = 100;
/** Header of `GET /v1/snapshot` carrying the snapshot's `_ldb_seq`. */
export const SEQ_HEADER = "X-Ctl-Seq";
/** Header of `GET /v1/snapshot` carrying the SHA-256 (hex) of the body. */
export const SHA256_HEADER = "X-Ctl-Sha256";
/** Header of `GET /v1/snapshot` carrying when the snapshot was taken (ISO 8601). */
export const CREATED_AT_HEADER = "X-Ctl-Created-At";

const SNAPSHOT_NAME_RE = /^ldb-(\d{20})\.db\.gz$/;

/** The published name of the snapshot at `seq`; sorts by seq. */
export function snapshotName(seq: number): string {
  return `ldb-${String(seq).padStart(20, "0")}.db.gz`;
}

/** The seq in a published snapshot name, or undefined when the name is not one. */
export function seqOfSnapshotName(name: string): number | undefined {
  const m = SNAPSHOT_NAME_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

const entrySchema = z.object({
  /** Name relative to the manifest (a plain file name, no directories). */
  file: z.string().min(1).max(255).regex(/^[A-Za-z0-9._-]+$/),
  /** `_ldb_seq` inside the snapshot: the reflector replays the ledger after it. */
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  /** SHA-256 (hex) of the published (gzipped) bytes. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Size of the published (gzipped) bytes. */
  sizeBytes: z.number().int().nonnegative(),
  /** Size of the LDB once decompressed (for progress and disk-space checks). */
  ldbSizeBytes: z.number().int().nonnegative().optional(),
  /** When the snapshot was taken, ISO 8601. */
  createdAt: z.string().max(64),
});

/** One published snapshot. */
export type SnapshotEntry = z.infer<typeof entrySchema>;

/** `latest.json`: the newest snapshot's facts at top level, and every kept one, newest first. */
export const manifestSchema = entrySchema.extend({
  version: z.literal(1),
  snapshots: z.array(entrySchema).max(KEEP_MAX),
});

/** The parsed `latest.json`. */
export type Manifest = z.infer<typeof manifestSchema>;

/** Builds the manifest for `latest` followed by the `kept` older ones. */
export function buildManifest(latest: SnapshotEntry, kept: readonly SnapshotEntry[]): Manifest {
  return { version: 1, ...latest, snapshots: [latest, ...kept] };
}

/** The `.sha256` side file of a snapshot, `sha256sum` format. */
export function sha256FileText(entry: SnapshotEntry): string {
  return `${entry.sha256}  ${entry.file}\n`;
}

/** Parses manifest text; returns an error message instead of throwing. */
export function parseManifest(text: string): { manifest: Manifest } | { problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { problem: `not JSON (${(e as Error).message})` };
  }
  const result = manifestSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    return { problem: `${issue.path.join(".") || "manifest"}: ${issue.message}` };
  }
  return { manifest: result.data };
}
