/**
 * The segment-file log store: append-only files `wal/seg-<seq>.wal` of checksummed records
 * (see record_codec.ts), one write + one fdatasync per append, and a snapshot directory.
 *
 * Segments are preallocated: a new one is a file of zeros as long as a full segment, fsynced
 * before it is used, so an append overwrites blocks that already exist and its fdatasync flushes
 * data only. Appending to a growing file changed its size on every write, and each fdatasync
 * then forced an ext4 journal commit, which also flushed whatever else had newly allocated
 * blocks (the SoR's SQLite WAL): see DESIGN.md, "Preallocated segments". The next segment's file
 * is prepared in the background while the current one fills, as etcd's WAL does.
 *
 * Recovery: the log ends at the first record that is zeros (the unwritten rest of a
 * preallocated segment). A torn or corrupt record also ends the valid log; the file is truncated
 * there (and any later segment removed) with an error log line, and the member re-fetches what
 * it lost from the leader. Each new segment starts with the current hard state, so dropping old
 * segments never loses it.
 */

import { Buffer } from "node:buffer";
import { statfsSync } from "node:fs";
import { getLogger } from "@logtape/logtape";
import type { Entry, HardState, Snapshot, SnapshotMeta } from "../../../raft/types.ts";
import { ensureDir, syncDir } from "../../util/durable_file.ts";
import { LogReplay } from "./log_replay.ts";
import { encodeMarker, encodeRecords, scanRecords } from "./record_codec.ts";
import { SnapshotFiles } from "./snapshot_files.ts";
import { writeAll, writeAllSync } from "../../util/write_all.ts";
import { concatBytes } from "../../util/bytes.ts";
import {
  assertContiguous,
  type DurableState,
  emptyHardState,
  type LogStore,
  StorageError,
} from "./types.ts";
import { mark } from "../../util/timeline.ts";
import { FsyncThread } from "./fsync_thread.ts";

const logger = getLogger(["ctl", "raftnode", "wal"]);
const SEGMENT_NAME = /^seg-([0-9a-f]{16})\.wal$/;
/** The next segment's file while it is being prepared; a leftover one is removed at open. */
const SPARE_NAME = "spare.wal.tmp";
const ZEROS = new Uint8Array(1024 * 1024);

/** Options of the segment log. */
export interface SegmentLogOptions {
  /** A segment is closed and a new one started once it grows past this. */
  segmentBytesMax?: number;
  /**
   * Zero-fill each segment to `segmentBytesMax` before use (default true). Off, a segment grows
   * with every append (one journal commit per fsync on ext4).
   */
  preallocate?: boolean;
  /**
   * Free bytes on the log's file system (default: statfs of the WAL directory). A spare is
   * zero-filled only while at least two segments' worth is free.
   */
  freeBytes?: (dir: string) => number;
}

interface Segment {
  seq: number;
  path: string;
  /** Highest index of an entry or marker written to this segment; 0 when none. */
  maxIndex: number;
}

/** A LogStore over append-only segment files. Open with `SegmentLog.open`. */
export class SegmentLog implements LogStore {
  readonly kind = "segment";
  private segments: Segment[] = [];
  private file: Deno.FsFile | null = null;
  private fileBytes = 0;
  private hardState: HardState = emptyHardState();
  /** Index of the last live entry (or of the snapshot when the log is empty after it). */
  private lastIndex = 0;
  private loaded: DurableState | null = null;
  private closed = false;
  /** Runs `appendWaiting`'s fdatasyncs; started by the first one. */
  private fsyncThread: FsyncThread | null = null;
  /** Serialises writes: each operation chains on the previous one. */
  private tail: Promise<void> = Promise.resolve();
  /** Operations started or queued and not yet settled. */
  private pending = 0;
  /** The next segment's zero-filled file (SPARE_NAME), being prepared or ready. */
  private spare: Promise<void> | null = null;
  /** Whether the last spare was skipped for want of space (logged once per change). */
  private short = false;

  private constructor(
    private readonly walDir: string,
    private readonly snapshots: SnapshotFiles,
    private readonly segmentBytesMax: number,
    private readonly preallocate: boolean,
    private readonly freeBytes: (dir: string) => number,
  ) {}

  /** Opens the store under `dir`, recovering from a torn or corrupt tail. */
  static async open(dir: string, options: SegmentLogOptions = {}): Promise<SegmentLog> {
    const walDir = `${dir}/wal`;
    await ensureDir(walDir);
    const snapshots = await SnapshotFiles.open(`${dir}/snap`);
    const log = new SegmentLog(
      walDir,
      snapshots,
      options.segmentBytesMax ?? 16 * 1024 * 1024,
      options.preallocate ?? true,
      options.freeBytes ?? statfsFreeBytes,
    );
    await log.recover();
    return log;
  }

  private async recover(): Promise<void> {
    const snapshot = await this.snapshots.loadNewest();
    const names: { seq: number; name: string }[] = [];
    for await (const e of Deno.readDir(this.walDir)) {
      const m = e.isFile ? SEGMENT_NAME.exec(e.name) : null;
      if (m) names.push({ seq: parseInt(m[1], 16), name: e.name });
      else if (e.isFile && e.name.endsWith(".tmp")) await Deno.remove(`${this.walDir}/${e.name}`);
    }
    names.sort((a, b) => a.seq - b.seq);
    const replay = new LogReplay();
    let hardState = emptyHardState();
    let lastValidBytes = 0;
    for (let i = 0; i < names.length; i++) {
      const path = `${this.walDir}/${names[i].name}`;
      const buf = await Deno.readFile(path);
      const scan = scanRecords(buf);
      // The unwritten rest of a preallocated segment is where its log ends, not damage.
      if (scan.problem !== null && allZero(buf, scan.validBytes)) scan.problem = null;
      const segment: Segment = { seq: names[i].seq, path, maxIndex: 0 };
      for (const r of scan.records) {
        if (r.kind === "entry") {
          replay.entry(r.entry);
          segment.maxIndex = Math.max(segment.maxIndex, r.entry.index);
        } else if (r.kind === "hardState") {
          hardState = r.hardState;
        } else {
          replay.marker(r.index, r.term);
          segment.maxIndex = Math.max(segment.maxIndex, r.index);
        }
      }
      this.segments.push(segment);
      lastValidBytes = scan.validBytes;
      if (scan.problem !== null) {
        logger.error(
          "WAL segment {file} has a torn or corrupt tail ({problem}); truncating it from " +
            "{fileBytes} to {validBytes} bytes and dropping {later} later segment(s)",
          {
            file: path,
            problem: scan.problem,
            fileBytes: buf.length,
            validBytes: scan.validBytes,
            later: names.length - i - 1,
          },
        );
        await Deno.truncate(path, scan.validBytes);
        const f = await Deno.open(path, { write: true });
        await f.sync();
        f.close();
        for (const later of names.slice(i + 1)) await Deno.remove(`${this.walDir}/${later.name}`);
        await syncDir(this.walDir);
        break;
      }
    }
    const entries = replay.result(snapshot);
    for (const p of replay.problems) logger.error("WAL replay: {problem}", { problem: p });
    this.hardState = hardState;
    this.lastIndex = entries.length > 0
      ? entries[entries.length - 1].index
      : (snapshot?.meta.index ?? 0);
    this.loaded = { hardState, snapshot, entries };
    if (this.segments.length === 0) {
      await this.startSegment(1, null);
    } else {
      const last = this.segments[this.segments.length - 1];
      this.file = await Deno.open(last.path, { write: true });
      await this.file.seek(lastValidBytes, Deno.SeekMode.Start);
      this.fileBytes = lastValidBytes;
      this.prepareSpare();
    }
  }

  /** Starts zero-filling the next segment's file, unless one is ready or under way. */
  private prepareSpare(): void {
    if (!this.preallocate || this.spare !== null) return;
    // A spare holds a whole segment of disk before it is needed. On a nearly full disk that
    // space is the SoR's and the snapshots' margin: without it a member stops on "disk full"
    // in its SoR while 16 MiB of zeros wait. Below two segments free, the next segment grows.
    const free = this.freeBytes(this.walDir);
    const enough = free >= 2 * this.segmentBytesMax;
    if (enough === this.short) {
      this.short = !enough;
      const fields = { free: Math.floor(free / 1048576), dir: this.walDir };
      logger[enough ? "info" : "warn"](
        enough
          ? "WAL segments under {dir} are preallocated again ({free} MiB free)"
          : "Only {free} MiB free under {dir}: the next WAL segment grows, not preallocated",
        fields,
      );
    }
    if (!enough) return;
    const path = `${this.walDir}/${SPARE_NAME}`;
    const bytes = this.segmentBytesMax;
    const spare = zeroFillFile(path, bytes);
    spare.catch(() => {}); // awaited (and its error seen) when the spare is taken
    this.spare = spare;
  }

  /** Waits for the spare file and hands it over; null without preallocation. */
  private async takeSpare(): Promise<string | null> {
    if (!this.preallocate) return null;
    this.prepareSpare();
    const spare = this.spare;
    if (spare === null) return null; // short of space
    this.spare = null;
    try {
      await spare;
    } catch (err) {
      logger.warn("Could not preallocate a WAL segment ({error}); a growing file instead", {
        error: String(err),
      });
      return null;
    }
    return `${this.walDir}/${SPARE_NAME}`;
  }

  /** Creates segment `seq`, opening with the current hard state and an optional marker. */
  private async startSegment(seq: number, marker: Uint8Array | null): Promise<void> {
    const path = `${this.walDir}/seg-${seq.toString(16).padStart(16, "0")}.wal`;
    const tmp = `${path}.tmp`;
    const head = encodeRecords([], this.hardState);
    const body = marker === null ? head : concatBytes([head, marker]);
    const spare = await this.takeSpare();
    if (spare !== null) await Deno.rename(spare, tmp);
    const f = await Deno.open(tmp, { write: true, create: true, truncate: spare === null });
    await writeAll(f, body);
    await f.sync();
    f.close();
    // Published by rename so a crash never leaves a half-written segment head.
    await Deno.rename(tmp, path);
    await syncDir(this.walDir);
    this.file?.close();
    this.file = await Deno.open(path, { write: true });
    await this.file.seek(body.length, Deno.SeekMode.Start);
    this.fileBytes = body.length;
    this.segments.push({ seq, path, maxIndex: 0 });
    this.prepareSpare();
  }

  load(): Promise<DurableState> {
    const state = this.loaded;
    if (state === null) throw new Error("SegmentLog.load called twice");
    this.loaded = null;
    return Promise.resolve(state);
  }

  append(entries: readonly Entry[], hardState: HardState | null): Promise<void> {
    return this.queuedWrite(entries, hardState, () => this.file!.syncData());
  }

  /**
   * With no other write queued, writes now and waits on this thread up to `waitMs` for the
   * fdatasync, which runs on the log's own thread (`FsyncThread`): true when durable on return.
   */
  appendWaiting(
    entries: readonly Entry[],
    hardState: HardState | null,
    waitMs: number,
  ): true | Promise<void> {
    const onThread = (wait: boolean) => () => {
      const fsync = this.fsyncThread ??= new FsyncThread();
      fsync.request(this.currentSegment().path);
      return wait && fsync.waitSync(waitMs) ? undefined : fsync.wait();
    };
    // Queued: nothing to wait for on this thread now.
    if (this.pending > 0) return this.queuedWrite(entries, hardState, onThread(false));
    let written: Promise<void> | undefined;
    try {
      this.refuseWhenClosed("write");
      written = this.write(entries, hardState, onThread(true));
    } catch (e) {
      return Promise.reject(e);
    }
    // Still running: later operations queue behind it.
    return written === undefined ? true : this.serial(() => written);
  }

  /** `write` after every earlier operation. */
  private queuedWrite(
    entries: readonly Entry[],
    hardState: HardState | null,
    sync: () => Promise<void> | undefined,
  ): Promise<void> {
    return this.serial(async () => {
      await this.write(entries, hardState, sync);
    });
  }

  /**
   * Writes one append's records and has `sync` make them durable; returns a promise only when
   * something (a new segment, the fsync) is still to be awaited, so that an append whose fsync
   * was waited for on this thread completes in the caller's turn.
   */
  private write(
    entries: readonly Entry[],
    hardState: HardState | null,
    sync: () => Promise<void> | undefined,
  ): Promise<void> | undefined {
    if (entries.length === 0 && hardState === null) return undefined;
    assertContiguous(entries);
    if (entries.length > 0 && entries[0].index > this.lastIndex + 1) {
      throw new StorageError(
        "STORAGE_BAD_APPEND",
        `Cannot append entry ${entries[0].index}: the log ends at ${this.lastIndex}`,
      );
    }
    const buf = encodeRecords(entries, hardState);
    if (this.fileBytes > 0 && this.fileBytes + buf.length > this.segmentBytesMax) {
      return this.startSegment(this.currentSegment().seq + 1, null).then(() =>
        this.writeRecords(buf, entries, hardState, sync)
      );
    }
    return this.writeRecords(buf, entries, hardState, sync);
  }

  private writeRecords(
    buf: Uint8Array,
    entries: readonly Entry[],
    hardState: HardState | null,
    sync: () => Promise<void> | undefined,
  ): Promise<void> | undefined {
    // The write is blocking (a copy into the page cache) so that the fdatasync is dispatched
    // before append() returns: the Raft loop applies entries while it runs.
    writeAllSync(this.file!, buf);
    mark("written");
    const recorded = () => {
      mark("synced");
      this.fileBytes += buf.length;
      if (hardState !== null) this.hardState = hardState;
      if (entries.length > 0) {
        this.lastIndex = entries[entries.length - 1].index;
        const seg = this.currentSegment();
        seg.maxIndex = Math.max(seg.maxIndex, this.lastIndex);
      }
    };
    const syncing = sync();
    if (syncing === undefined) {
      recorded();
      return undefined;
    }
    return syncing.then(recorded);
  }

  /**
   * Not queued behind appends, nor they behind it: writing a large snapshot file must not hold
   * up the log's fsyncs (snapshot files have an order of their own, in SnapshotFiles).
   */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.refuseWhenClosed("write");
    await this.snapshots.save(snapshot);
  }

  installSnapshot(snapshot: Snapshot): Promise<void> {
    return this.serial(async () => {
      await this.snapshots.save(snapshot);
      const old = this.segments;
      this.segments = [];
      const marker = encodeMarker(snapshot.meta.index, snapshot.meta.term);
      await this.startSegment(old[old.length - 1].seq + 1, marker);
      this.currentSegment().maxIndex = snapshot.meta.index;
      for (const s of old) await Deno.remove(s.path);
      await syncDir(this.walDir);
      this.lastIndex = snapshot.meta.index;
    });
  }

  /** Like `saveSnapshot`, and not queued behind appends either. */
  async saveSnapshotFromFile(meta: SnapshotMeta, head: Uint8Array, statePath: string) {
    this.refuseWhenClosed("write");
    await this.snapshots.saveFromFile(meta, head, statePath);
  }

  async loadSnapshotData(index: number): Promise<Uint8Array | null> {
    this.refuseWhenClosed("read");
    return await this.snapshots.loadData(index);
  }

  private refuseWhenClosed(doing: "read" | "write"): void {
    if (this.closed) throw new StorageError("STORAGE_CLOSED", `Cannot ${doing}: log is closed`);
  }

  compact(index: number): Promise<void> {
    return this.serial(async () => {
      // The entry at `index` itself stays: it anchors the log to the snapshot taken there.
      let removed = 0;
      while (this.segments.length > 1 && this.segments[0].maxIndex < index) {
        await Deno.remove(this.segments[0].path);
        this.segments.shift();
        removed++;
      }
      if (removed > 0) await syncDir(this.walDir);
    });
  }

  /** Number of segment files, for tests and status. */
  segmentCount(): number {
    return this.segments.length;
  }

  close(): Promise<void> {
    return this.serial(async () => {
      this.closed = true;
      this.file?.close();
      this.file = null;
      this.fsyncThread?.close();
      // Not left writing after close; a half-made spare is removed at the next open.
      await this.spare?.catch(() => {});
    });
  }

  private currentSegment(): Segment {
    const seg = this.segments[this.segments.length - 1];
    if (seg === undefined) throw new Error("SegmentLog invariant: no current segment");
    return seg;
  }

  /**
   * Runs `op` after every earlier operation. With none pending it starts at once, in the
   * caller's turn, so its first I/O is under way before the caller goes on. `pending` drops
   * before the returned promise settles, so a caller that awaited it finds the log idle.
   */
  private serial(op: () => Promise<void>): Promise<void> {
    const guarded = async () => {
      try {
        this.refuseWhenClosed("write");
        await op();
      } finally {
        this.pending--;
      }
    };
    this.pending++;
    const run = this.pending === 1 ? guarded() : this.tail.then(guarded);
    this.tail = run.catch(() => {});
    return run;
  }
}

/** Free bytes for an unprivileged writer on `dir`'s file system; Infinity if unknown. */
function statfsFreeBytes(dir: string): number {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return Infinity;
  }
}

/**
 * Creates (or truncates) `path` as `bytes` zeros, size and blocks durable when it resolves, so
 * that appends into it need no metadata. An fdatasync after every MiB: with one fsync at the end,
 * the 16 MiB went to the disk at once and a log append's fdatasync queued behind them waited
 * 12–13 ms, against 1.3–2.0 ms at worst paced (`bench/suite/fsync_probe.ts`, "during a 16 MiB
 * zero-fill"). That stall came just after every member's start and at every segment roll-over.
 */
export async function zeroFillFile(path: string, bytes: number): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let at = 0; at < bytes; at += ZEROS.length) {
      await writeAll(f, ZEROS.subarray(0, Math.min(ZEROS.length, bytes - at)));
      await f.syncData();
    }
    await f.sync();
  } finally {
    f.close();
  }
}

/**
 * Is `buf[from..]` all zeros? Compared with `ZEROS` natively (memcmp): 0.3 ms for 16 MiB, against
 * 6–8 ms a byte at a time.
 */
function allZero(buf: Uint8Array, from: number): boolean {
  for (let at = from; at < buf.length; at += ZEROS.length) {
    const n = Math.min(ZEROS.length, buf.length - at);
    if (Buffer.compare(buf.subarray(at, at + n), ZEROS.subarray(0, n)) !== 0) return false;
  }
  return true;
}
