/**
 * Rebuilds the live log from records in write order, with Raft's overwrite semantics: an entry
 * at an index already present replaces it and everything after it; a snapshot marker restarts
 * the log after its point.
 */

import type { Entry, Snapshot } from "../../../raft/types.ts";
import { StorageError } from "./types.ts";

/** A log position the live log is anchored at: a real entry or a snapshot marker. */
interface Slot {
  index: number;
  term: number;
  entry: Entry | null;
}

/** Accumulates records; `result` returns the entries that follow the snapshot. */
export class LogReplay {
  private slots: Slot[] = [];
  /** Problems found (gaps), for the caller to log. */
  readonly problems: string[] = [];

  /** Adds an entry in write order. */
  entry(e: Entry): void {
    this.place({ index: e.index, term: e.term, entry: e });
  }

  /** Adds a snapshot marker: the log restarts after (index, term). */
  marker(index: number, term: number): void {
    this.slots = [{ index, term, entry: null }];
  }

  private place(slot: Slot): void {
    const first = this.slots[0];
    if (first === undefined) {
      this.slots.push(slot);
      return;
    }
    const offset = slot.index - first.index;
    if (offset <= 0) {
      this.slots = [slot];
    } else if (offset <= this.slots.length) {
      this.slots.length = offset;
      this.slots.push(slot);
    } else {
      this.problems.push(
        `gap in log: entry ${slot.index} after ${first.index + this.slots.length - 1}`,
      );
      this.slots = [slot];
    }
  }

  /**
   * The live entries after `snapshot` (or from index 1 without one). When the log does not
   * contain the snapshot's point with the same term, it was superseded by the snapshot (a crash
   * between installing a snapshot and restarting the log) and is dropped.
   */
  result(snapshot: Snapshot | null): Entry[] {
    const base = snapshot?.meta.index ?? 0;
    const first = this.slots[0];
    if (first === undefined) return [];
    const live = (from: number) =>
      this.slots.slice(from).map((s) => s.entry).filter((e): e is Entry => e !== null);
    if (snapshot === null) {
      if (first.index !== 1) {
        throw new StorageError(
          "STORAGE_GAP",
          `Cannot load log: it starts at ${first.index} and there is no snapshot`,
        );
      }
      return live(0);
    }
    // A log that starts right after the snapshot needs no anchor (bootstrap, or compacted).
    if (first.index === base + 1) return live(0);
    const anchor = this.slots[base - first.index];
    if (base - first.index >= 0 && anchor !== undefined && anchor.term === snapshot.meta.term) {
      return live(base - first.index + 1);
    }
    if (first.index > base + 1) {
      throw new StorageError(
        "STORAGE_GAP",
        `Cannot load log: it starts at ${first.index}, after snapshot ${base}`,
      );
    }
    const last = first.index + this.slots.length - 1;
    if (last > base) {
      this.problems.push(
        `log entries ${
          base + 1
        }..${last} do not follow snapshot ${base}/${snapshot.meta.term}; dropped`,
      );
    }
    return [];
  }
}
