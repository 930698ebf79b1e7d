/**
 * The log storage the core reads from, and an in-memory implementation.
 *
 * The core only reads storage. The driver writes to it: it appends `Ready.entries`, saves
 * `Ready.hardState` and applies `Ready.snapshot`, and it compacts after taking application
 * snapshots. Like etcd, the log keeps a dummy entry at the snapshot index so that the term of
 * the entry just before the first retained one is always known.
 */

import { CompactedError, invariant, RaftError, UnavailableError } from "./errors.ts";
import type { ConfState, Entry, HardState, Snapshot, SnapshotMeta } from "./types.ts";

/** Read access to the durable log, as the core needs it. */
export interface Storage {
  /** The persisted hard state and the configuration of the latest snapshot. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), at least one if any, at most `maxSizeBytes` in total (see entrySizeBytes).
   * Throws CompactedError if lo <= the snapshot index, UnavailableError if hi > lastIndex + 1.
   */
  entries(lo: number, hi: number, maxSizeBytes?: number): Entry[];
  /** The term of entry `index`; also defined at firstIndex - 1 (the snapshot index). */
  term(index: number): number;
  /** The index of the first entry that is still in the log (snapshot index + 1). */
  firstIndex(): number;
  /** The index of the last entry, or the snapshot index when the log is empty. */
  lastIndex(): number;
  /** The latest snapshot. Throws RaftError "SnapshotUnavailable" when it is not ready yet. */
  snapshot(): Snapshot;
}

/** Bytes an entry counts for in size limits: its payload plus a fixed header allowance. */
export function entrySizeBytes(e: Entry): number {
  return e.data.byteLength + 16;
}

/** Returns the longest prefix of `ents` within `maxSizeBytes`, but never less than one entry. */
export function limitSize(ents: Entry[], maxSizeBytes: number | undefined): Entry[] {
  if (maxSizeBytes === undefined || ents.length <= 1) return ents;
  let size = entrySizeBytes(ents[0]);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySizeBytes(ents[n]);
    if (size > maxSizeBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/** An empty configuration: a node that joins an existing cluster starts with it. */
export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

/** Storage held in memory. The driver may use it as its cache in front of a disk log. */
export class MemoryStorage implements Storage {
  #hardState: HardState = { term: 0, vote: null, commit: 0 };
  #snapshot: Snapshot = {
    meta: { index: 0, term: 0, conf: emptyConfState() },
    data: new Uint8Array(),
  };
  /** ents[0] is a dummy entry at the snapshot index; ents[i] has index ents[0].index + i. */
  #ents: Entry[] = [{ index: 0, term: 0, type: "normal", data: new Uint8Array() }];
  /** False while the snapshot's data is on the driver's disk only (`releaseSnapshotData`). */
  #snapshotResident = true;
  /** Set when `snapshot()` was asked for while the data was not resident. */
  #snapshotWanted = false;

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.#hardState }, confState: this.#snapshot.meta.conf };
  }

  /** Saves the hard state (the driver calls this with `Ready.hardState`). */
  setHardState(hs: HardState): void {
    this.#hardState = { ...hs };
  }

  /** The hard state last saved. */
  hardState(): HardState {
    return { ...this.#hardState };
  }

  entries(lo: number, hi: number, maxSizeBytes?: number): Entry[] {
    const offset = this.#ents[0].index;
    if (lo <= offset) {
      throw new CompactedError(`Cannot read entries from ${lo}: compacted to ${offset}`);
    }
    if (hi > this.lastIndex() + 1) {
      throw new UnavailableError(`Cannot read entries to ${hi}: last index is ${this.lastIndex()}`);
    }
    invariant(lo <= hi, () => `entries(${lo}, ${hi}): lo > hi`);
    if (this.#ents.length === 1) return [];
    return limitSize(this.#ents.slice(lo - offset, hi - offset), maxSizeBytes);
  }

  term(index: number): number {
    const offset = this.#ents[0].index;
    if (index < offset) {
      throw new CompactedError(`Cannot read term of ${index}: compacted to ${offset}`);
    }
    if (index - offset >= this.#ents.length) {
      throw new UnavailableError(`Cannot read term of ${index}: last index is ${this.lastIndex()}`);
    }
    return this.#ents[index - offset].term;
  }

  firstIndex(): number {
    return this.#ents[0].index + 1;
  }

  lastIndex(): number {
    return this.#ents[0].index + this.#ents.length - 1;
  }

  snapshot(): Snapshot {
    if (!this.#snapshotResident) {
      this.#snapshotWanted = true;
      throw new RaftError(
        "SnapshotUnavailable",
        `Snapshot ${this.#snapshot.meta.index} is not in memory; the driver is to load it`,
      );
    }
    return this.#snapshot;
  }

  /**
   * Drops the snapshot's data from memory; the driver has it on disk. A large application state
   * would otherwise be held twice, here and in the application, for as long as no follower
   * needs it. Until `restoreSnapshotData`, `snapshot()` throws SnapshotUnavailable (the leader
   * sends nothing and tries again on the follower's next heartbeat response) and
   * `wantedSnapshot()` says which data to load.
   */
  releaseSnapshotData(): void {
    if (this.#snapshot.meta.index === 0 || !this.#snapshotResident) return;
    this.#snapshot = { meta: this.#snapshot.meta, data: new Uint8Array() };
    this.#snapshotResident = false;
  }

  /** The latest snapshot's index, term and configuration, whether or not its data is in memory. */
  snapshotMeta(): SnapshotMeta {
    return this.#snapshot.meta;
  }

  /** Whether the snapshot's data is in memory. */
  snapshotResident(): boolean {
    return this.#snapshotResident;
  }

  /** The index of a released snapshot that `snapshot()` was asked for since, or null. */
  wantedSnapshot(): number | null {
    return this.#snapshotWanted && !this.#snapshotResident ? this.#snapshot.meta.index : null;
  }

  /**
   * Puts back the data of the snapshot at `index` (loaded from the driver's disk). Returns false,
   * changing nothing, when a newer snapshot replaced that one meanwhile or it is in memory.
   */
  restoreSnapshotData(index: number, data: Uint8Array): boolean {
    if (this.#snapshotResident || index !== this.#snapshot.meta.index) return false;
    this.#snapshot = { meta: this.#snapshot.meta, data };
    this.#snapshotResident = true;
    this.#snapshotWanted = false;
    return true;
  }

  /** Replaces the log with a snapshot received from the leader (`Ready.snapshot`). */
  applySnapshot(snap: Snapshot): void {
    if (snap.meta.index <= this.#snapshot.meta.index) {
      throw new RaftError(
        "SnapshotOutOfDate",
        `Cannot apply snapshot at ${snap.meta.index}: storage has one at ${this.#snapshot.meta.index}`,
      );
    }
    this.#snapshot = snap;
    this.#snapshotResident = true;
    this.#snapshotWanted = false;
    this.#ents = [{
      index: snap.meta.index,
      term: snap.meta.term,
      type: "normal",
      data: new Uint8Array(),
    }];
  }

  /**
   * Records an application snapshot at `index` (<= applied), with the configuration at that
   * index and the application's data, or null when the driver keeps the data on disk only (as
   * after `releaseSnapshotData`). Does not compact; call `compact` for that.
   */
  createSnapshot(index: number, conf: ConfState | undefined, data: Uint8Array | null): Snapshot {
    if (index <= this.#snapshot.meta.index) {
      throw new RaftError(
        "SnapshotOutOfDate",
        `Cannot create snapshot at ${index}: storage has one at ${this.#snapshot.meta.index}`,
      );
    }
    invariant(index <= this.lastIndex(), () => `snapshot ${index} beyond last ${this.lastIndex()}`);
    const offset = this.#ents[0].index;
    this.#snapshot = {
      meta: {
        index,
        term: this.#ents[index - offset].term,
        conf: conf ?? this.#snapshot.meta.conf,
      },
      data: data ?? new Uint8Array(),
    };
    this.#snapshotResident = data !== null;
    this.#snapshotWanted = false;
    return this.#snapshot;
  }

  /** Discards entries up to and including `index`, which must not exceed the snapshot index. */
  compact(index: number): void {
    const offset = this.#ents[0].index;
    if (index <= offset) {
      throw new CompactedError(`Cannot compact to ${index}: already at ${offset}`);
    }
    invariant(index <= this.lastIndex(), () => `compact ${index} beyond last ${this.lastIndex()}`);
    invariant(
      index <= this.#snapshot.meta.index,
      () => `compact ${index} beyond snapshot ${this.#snapshot.meta.index}: state would be lost`,
    );
    const i = index - offset;
    const dummy: Entry = {
      index,
      term: this.#ents[i].term,
      type: "normal",
      data: new Uint8Array(),
    };
    this.#ents = [dummy, ...this.#ents.slice(i + 1)];
  }

  /**
   * Appends entries (`Ready.entries`). Entries that conflict with existing ones replace them and
   * everything after; entries already compacted are skipped.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return;
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const offset = entries[0].index - this.#ents[0].index;
    invariant(
      offset <= this.#ents.length,
      () => `missing log entries: last ${this.lastIndex()}, appending at ${entries[0].index}`,
    );
    if (offset < this.#ents.length) this.#ents.length = offset;
    for (const e of entries) this.#ents.push(e);
  }
}
