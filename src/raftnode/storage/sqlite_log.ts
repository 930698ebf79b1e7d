/**
 * The SQLite log store (node:sqlite, WAL journal, synchronous=FULL): one transaction per append.
 * Snapshots live in files beside the database, as for the segment store.
 *
 * node:sqlite is synchronous, so each commit's fsync blocks the event loop; see DESIGN.md for
 * why the segment store is the default.
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { getLogger } from "@logtape/logtape";
import type { Entry, HardState, Snapshot, SnapshotMeta } from "../../../raft/types.ts";
import { ensureDir } from "../../util/durable_file.ts";
import { LogReplay } from "./log_replay.ts";
import { SnapshotFiles } from "./snapshot_files.ts";
import {
  assertContiguous,
  type DurableState,
  emptyHardState,
  type LogStore,
  StorageError,
} from "./types.ts";

const logger = getLogger(["ctl", "raftnode", "sqlite-log"]);

/** A LogStore over one SQLite database. Open with `SqliteLog.open`. */
export class SqliteLog implements LogStore {
  readonly kind = "sqlite";
  private loaded: DurableState | null = null;
  private lastIndex = 0;
  private closed = false;
  private readonly insert: StatementSync;
  private readonly deleteFrom: StatementSync;
  private readonly putMeta: StatementSync;

  private constructor(
    private readonly db: DatabaseSync,
    private readonly snapshots: SnapshotFiles,
  ) {
    this.insert = db.prepare("INSERT INTO entries (idx, term, type, data) VALUES (?, ?, ?, ?)");
    this.deleteFrom = db.prepare("DELETE FROM entries WHERE idx >= ?");
    this.putMeta = db.prepare("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)");
  }

  /** Opens (creating if needed) `dir/log.db` and `dir/snap/`. */
  static async open(dir: string): Promise<SqliteLog> {
    await ensureDir(dir);
    const snapshots = await SnapshotFiles.open(`${dir}/snap`);
    const db = new DatabaseSync(`${dir}/log.db`);
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("PRAGMA synchronous=FULL");
    db.exec(`CREATE TABLE IF NOT EXISTS entries (
      idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB NOT NULL)`);
    db.exec("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
    const log = new SqliteLog(db, snapshots);
    await log.recover();
    return log;
  }

  private async recover(): Promise<void> {
    const snapshot = await this.snapshots.loadNewest();
    const meta = new Map<string, string>();
    for (const row of this.db.prepare("SELECT k, v FROM meta").all()) {
      meta.set(String(row.k), String(row.v));
    }
    const hardState: HardState = meta.has("hardState")
      ? JSON.parse(meta.get("hardState")!)
      : emptyHardState();
    const replay = new LogReplay();
    const marker = meta.has("marker") ? JSON.parse(meta.get("marker")!) : null;
    const rows = this.db.prepare("SELECT idx, term, type, data FROM entries ORDER BY idx").all();
    // The marker anchors the log only while the entries still start right after it.
    if (marker !== null && (rows.length === 0 || Number(rows[0].idx) <= marker.index + 1)) {
      replay.marker(marker.index, marker.term);
    }
    for (const r of rows) {
      replay.entry({
        index: Number(r.idx),
        term: Number(r.term),
        type: r.type === 1 ? "conf" : "normal",
        data: new Uint8Array(r.data as Uint8Array),
      });
    }
    const entries = replay.result(snapshot);
    for (const p of replay.problems) logger.error("SQLite log replay: {problem}", { problem: p });
    this.lastIndex = entries.length > 0
      ? entries[entries.length - 1].index
      : (snapshot?.meta.index ?? 0);
    this.loaded = { hardState, snapshot, entries };
  }

  load(): Promise<DurableState> {
    const state = this.loaded;
    if (state === null) throw new Error("SqliteLog.load called twice");
    this.loaded = null;
    return Promise.resolve(state);
  }

  append(entries: readonly Entry[], hardState: HardState | null): Promise<void> {
    this.checkOpen();
    if (entries.length === 0 && hardState === null) return Promise.resolve();
    assertContiguous(entries);
    if (entries.length > 0 && entries[0].index > this.lastIndex + 1) {
      throw new StorageError(
        "STORAGE_BAD_APPEND",
        `Cannot append entry ${entries[0].index}: the log ends at ${this.lastIndex}`,
      );
    }
    this.transaction(() => {
      if (entries.length > 0) this.deleteFrom.run(entries[0].index);
      for (const e of entries) this.insert.run(e.index, e.term, e.type === "conf" ? 1 : 0, e.data);
      if (hardState !== null) this.putMeta.run("hardState", JSON.stringify(hardState));
    });
    if (entries.length > 0) this.lastIndex = entries[entries.length - 1].index;
    return Promise.resolve();
  }

  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.checkOpen();
    await this.snapshots.save(snapshot);
  }

  async installSnapshot(snapshot: Snapshot): Promise<void> {
    this.checkOpen();
    await this.snapshots.save(snapshot);
    const { index, term } = snapshot.meta;
    this.transaction(() => {
      this.db.prepare("DELETE FROM entries").run();
      this.putMeta.run("marker", JSON.stringify({ index, term }));
    });
    this.lastIndex = index;
  }

  async saveSnapshotFromFile(meta: SnapshotMeta, head: Uint8Array, statePath: string) {
    this.checkOpen();
    await this.snapshots.saveFromFile(meta, head, statePath);
  }

  async loadSnapshotData(index: number): Promise<Uint8Array | null> {
    this.checkOpen("read");
    return await this.snapshots.loadData(index);
  }

  compact(index: number): Promise<void> {
    this.checkOpen();
    // The entry at `index` itself stays: it anchors the log to the snapshot taken there.
    this.db.prepare("DELETE FROM entries WHERE idx < ?").run(index);
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (!this.closed) this.db.close();
    this.closed = true;
    return Promise.resolve();
  }

  private transaction(body: () => void): void {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      body();
      this.db.exec("COMMIT");
    } catch (err) {
      this.db.exec("ROLLBACK");
      throw err;
    }
  }

  private checkOpen(doing: "read" | "write" = "write"): void {
    if (this.closed) throw new StorageError("STORAGE_CLOSED", `Cannot ${doing}: log is closed`);
  }
}
