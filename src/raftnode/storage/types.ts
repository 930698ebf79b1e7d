/**
 * The durable side of a Raft member: its log, hard state and latest snapshot.
 *
 * A `LogStore` is write-behind storage for the core's in-memory log: the runtime persists each
 * Ready through it and, at start, loads what it holds back into the core. Every implementation
 * passes `conformance_test.ts`.
 */

import type { Entry, HardState, Snapshot, SnapshotMeta } from "../../../raft/types.ts";

/** Everything a store holds, as loaded at open. */
export interface DurableState {
  hardState: HardState;
  /** The newest valid snapshot, or null when none was ever saved. */
  snapshot: Snapshot | null;
  /** Contiguous entries after the snapshot (or from index 1), in index order. */
  entries: Entry[];
}

/** Durable Raft log and hard state. Methods resolve only once the change is on stable storage. */
export interface LogStore {
  /** A name for logs and benchmarks, e.g. "segment" or "sqlite". */
  readonly kind: string;
  /** What the store held when opened (recovery already done). Called once, before any write. */
  load(): Promise<DurableState>;
  /**
   * Appends `entries` (contiguous, ascending) and records `hardState` when given, with one fsync.
   * An entry at an index already present replaces it and drops every later one (Raft overwrite).
   */
  append(entries: readonly Entry[], hardState: HardState | null): Promise<void>;
  /**
   * Optional. As `append`, except that when no other write of the store is queued, the records
   * are written at once and the caller's thread waits up to `waitMs` for their fsync, which runs
   * on a thread of the store's own: returns true when they are durable on return, or else a
   * promise that settles as `append`'s does. Waking the caller directly, not through its event
   * loop, saves the 30–90 µs a hand-off to the thread pool and back costs here; the bound keeps
   * the caller free to do other work while the disk is slow.
   */
  appendWaiting?(
    entries: readonly Entry[],
    hardState: HardState | null,
    waitMs: number,
  ): true | Promise<void>;
  /**
   * Publishes a snapshot taken locally (for compaction) atomically, replacing older snapshots.
   * Entries above `snapshot.meta.index` are kept; call `compact` to drop the ones below.
   */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /**
   * Like `saveSnapshot`, for a snapshot whose data is `head` followed by the contents of the file
   * at `statePath` (a copy of the application state): the store copies the file without reading
   * it into memory. The file is left where it is.
   */
  saveSnapshotFromFile(meta: SnapshotMeta, head: Uint8Array, statePath: string): Promise<void>;
  /**
   * Publishes a snapshot received from the leader and restarts the log after it: every entry
   * held before is dropped, the next append starts at `snapshot.meta.index + 1`.
   */
  installSnapshot(snapshot: Snapshot): Promise<void>;
  /**
   * The data of the saved snapshot at `index`, read back (the runtime keeps snapshot data in
   * memory only while a follower needs it); null when the store no longer holds that snapshot
   * (a newer one replaced it).
   */
  loadSnapshotData(index: number): Promise<Uint8Array | null>;
  /** Allows the store to drop entries at or below `index` (granularity is store-specific). */
  compact(index: number): Promise<void>;
  close(): Promise<void>;
}

/** Stable codes of expected storage failures. */
export type StorageErrorCode = "STORAGE_CLOSED" | "STORAGE_GAP" | "STORAGE_BAD_APPEND";

/** An expected storage failure, with a stable code. */
export class StorageError extends Error {
  constructor(readonly code: StorageErrorCode, message: string) {
    super(message);
    this.name = "StorageError";
  }
}

/** The hard state of a member that never voted or committed. */
export function emptyHardState(): HardState {
  return { term: 0, vote: null, commit: 0 };
}

/** Checks that `entries` are contiguous and ascending; throws a StorageError otherwise. */
export function assertContiguous(entries: readonly Entry[]): void {
  for (let i = 1; i < entries.length; i++) {
    if (entries[i].index !== entries[i - 1].index + 1) {
      throw new StorageError(
        "STORAGE_BAD_APPEND",
        `Cannot append: entry ${entries[i].index} does not follow ${entries[i - 1].index}`,
      );
    }
  }
}
