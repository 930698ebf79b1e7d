/**
 * The changelog: one JSON line per changed row, in ctlstore's shape, with `seq` = the ledger seq
 * that changed the row (ctlstore's counter reset on restart; ours lets a consumer resume).
 *
 * Exactly-once on disk: the reflector writes and fsyncs a batch's lines inside the LDB
 * transaction, before COMMIT. If the process dies between the fsync and the commit, the lines of
 * the uncommitted entries are on disk but their entries are not in the LDB; on the next start
 * `Changelog.open` cuts every line with a seq above the LDB's `_ldb_seq` (and any torn last line)
 * before the entries are applied again. So the files hold each changed row once, in seq order.
 *
 * A consumer tailing the file live may read such lines before the cut and then read them again
 * after the re-apply: duplicates are possible only for the seqs being re-applied after a crash.
 * Consumers resume by remembering the last seq they finished and skipping lines with seq ≤ it.
 *
 * Rotation by size, only between batches (a seq's lines never straddle two files): FILE is
 * renamed to FILE.1, FILE.1 to FILE.2, … up to FILE.N (`filesMax`); only FILE.N's former contents
 * are deleted, so rotation itself never loses a line.
 */
import { Buffer } from "node:buffer";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { SeqChangedRow } from "../ldb/writer.ts";
import { log } from "../util/log.ts";
import { writeAllSync } from "../util/write_all.ts";

export interface ChangelogOptions {
  path: string;
  /** Rotate when the file reaches this size. */
  rotateBytes: number;
  /** Rotated files to keep: FILE.1 … FILE.filesMax. */
  filesMax: number;
}

/** The line for one changed row, as ctlstore writes it (plus our ledger seq). */
export function changelogLine(row: SeqChangedRow): string {
  return JSON.stringify({ seq: row.seq, family: row.family, table: row.table, key: row.key }) +
    "\n";
}

const encoder = new TextEncoder();

/** An append-only, fsynced, size-rotated changelog file. */
export class Changelog {
  readonly options: ChangelogOptions;
  #file: Deno.FsFile;
  #sizeBytes: number;
  readonly #log = log("reflector", "changelog");

  private constructor(options: ChangelogOptions, file: Deno.FsFile, sizeBytes: number) {
    this.options = options;
    this.#file = file;
    this.#sizeBytes = sizeBytes;
  }

  /**
   * Opens the changelog for appending after the LDB's applied seq: cuts lines with a seq above
   * `appliedSeq` (written for entries that never committed) and a torn last line.
   */
  static open(options: ChangelogOptions, appliedSeq: number): Changelog {
    if (!(options.rotateBytes > 0) || !(options.filesMax >= 1)) {
      throw new RangeError("changelog rotateBytes and filesMax must be positive");
    }
    mkdirSync(dirname(options.path), { recursive: true });
    const rotatedSeq = lastSeqOf(`${options.path}.1`);
    if (rotatedSeq !== undefined && rotatedSeq > appliedSeq) {
      // Only the current file can hold lines of an uncommitted batch; a rotated file past the
      // LDB means the LDB was replaced by an older one. Cutting would break the seq order.
      throw new Error(
        `Changelog ${options.path}.1 reaches seq ${rotatedSeq} but the LDB is at seq ` +
          `${appliedSeq}: the LDB was replaced; move the old changelog files away`,
      );
    }
    const file = Deno.openSync(options.path, { read: true, write: true, create: true });
    const content = Deno.readFileSync(options.path);
    const keep = committedLength(content, appliedSeq);
    if (keep < content.length) {
      file.truncateSync(keep);
      file.syncDataSync();
      log("reflector", "changelog").info(
        "Cut {bytes} bytes of changelog lines past LDB seq {seq} (entries not committed)",
        { bytes: content.length - keep, seq: appliedSeq },
      );
    }
    file.seekSync(keep, Deno.SeekMode.Start);
    return new Changelog(options, file, keep);
  }

  /** Current size of FILE in bytes. */
  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** Appends the lines of one batch and fsyncs them; rotates first when FILE is full. */
  append(rows: readonly SeqChangedRow[]): void {
    if (rows.length === 0) return;
    if (this.#sizeBytes >= this.options.rotateBytes) this.#rotate();
    const bytes = encoder.encode(rows.map(changelogLine).join(""));
    writeAllSync(this.#file, bytes);
    this.#file.syncDataSync();
    this.#sizeBytes += bytes.length;
  }

  close(): void {
    this.#file.close();
  }

  #rotate(): void {
    const { path, filesMax } = this.options;
    this.#file.close();
    for (let i = filesMax - 1; i >= 1; i--) {
      renameIfExists(`${path}.${i}`, `${path}.${i + 1}`);
    }
    Deno.renameSync(path, `${path}.1`);
    this.#file = Deno.openSync(path, { read: true, write: true, create: true, truncate: true });
    this.#sizeBytes = 0;
    syncDirectory(dirname(path));
    this.#log.info("Rotated changelog {path}", { path });
  }
}

/** Length of the prefix of `content` made of whole lines whose seq ≤ appliedSeq. */
function committedLength(content: Uint8Array, appliedSeq: number): number {
  let end = content.lastIndexOf(0x0a) + 1; // drop a torn last line
  while (end > 0) {
    const start = content.lastIndexOf(0x0a, end - 2) + 1;
    const line = Buffer.from(content.subarray(start, end - 1)).toString("utf8");
    const seq = lineSeq(line);
    if (seq !== undefined && seq <= appliedSeq) return end;
    end = start;
  }
  return 0;
}

/** The seq of the last whole line of a file, undefined when it is missing or has none. */
function lastSeqOf(path: string): number | undefined {
  let content: Uint8Array;
  try {
    content = Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const end = content.lastIndexOf(0x0a);
  if (end < 0) return undefined;
  const start = content.lastIndexOf(0x0a, end - 1) + 1;
  return lineSeq(Buffer.from(content.subarray(start, end)).toString("utf8"));
}

function lineSeq(line: string): number | undefined {
  try {
    const seq = (JSON.parse(line) as { seq?: unknown }).seq;
    return typeof seq === "number" ? seq : undefined;
  } catch {
    return undefined;
  }
}

function renameIfExists(from: string, to: string): void {
  try {
    Deno.renameSync(from, to);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Makes the renames durable; best effort where a directory cannot be opened for sync. */
function syncDirectory(dir: string): void {
  try {
    const handle = Deno.openSync(dir, { read: true });
    try {
      handle.syncSync();
    } finally {
      handle.close();
    }
  } catch {
    // Not every platform lets a directory be fsynced; the data itself is already synced.
  }
}
