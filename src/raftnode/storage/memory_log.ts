/**
 * An in-memory LogStore for tests: same semantics as the durable stores, no disk. A "restart"
 * is modelled by opening a new MemoryLog over the same `MemoryLogData`.
 */

import type { Entry, HardState, Snapshot, SnapshotMeta } from "../../../raft/types.ts";
import { concatBytes } from "../../util/bytes.ts";
import {
  assertContiguous,
  type DurableState,
  emptyHardState,
  type LogStore,
  StorageError,
} from "./types.ts";

/** What survives a simulated restart. */
export interface MemoryLogData {
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
}

/** Creates empty data for a MemoryLog. */
export function newMemoryLogData(): MemoryLogData {
  return { hardState: emptyHardState(), snapshot: null, entries: [] };
}

/** A LogStore kept in memory. */
export class MemoryLog implements LogStore {
  readonly kind = "memory";
  private closed = false;

  constructor(private readonly data: MemoryLogData = newMemoryLogData()) {}

  load(): Promise<DurableState> {
    return Promise.resolve({
      hardState: { ...this.data.hardState },
      snapshot: this.data.snapshot,
      entries: this.data.entries.filter((e) => e.index > (this.data.snapshot?.meta.index ?? 0)),
    });
  }

  append(entries: readonly Entry[], hardState: HardState | null): Promise<void> {
    this.checkOpen();
    assertContiguous(entries);
    const d = this.data;
    if (entries.length > 0) {
      const base = d.snapshot?.meta.index ?? 0;
      const first = d.entries[0]?.index ?? base + 1;
      const last = first + d.entries.length - 1;
      if (entries[0].index > last + 1) {
        throw new StorageError(
          "STORAGE_BAD_APPEND",
          `Cannot append entry ${entries[0].index}: the log ends at ${last}`,
        );
      }
      d.entries.length = Math.max(0, entries[0].index - first);
      d.entries.push(...entries.map((e) => ({ ...e, data: e.data.slice() })));
    }
    if (hardState !== null) d.hardState = { ...hardState };
    return Promise.resolve();
  }

  saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.checkOpen();
    this.data.snapshot = snapshot;
    return Promise.resolve();
  }

  async saveSnapshotFromFile(meta: SnapshotMeta, head: Uint8Array, statePath: string) {
    this.checkOpen();
    this.data.snapshot = { meta, data: concatBytes([head, await Deno.readFile(statePath)]) };
  }

  installSnapshot(snapshot: Snapshot): Promise<void> {
    this.checkOpen();
    this.data.snapshot = snapshot;
    this.data.entries = [];
    return Promise.resolve();
  }

  loadSnapshotData(index: number): Promise<Uint8Array | null> {
    this.checkOpen();
    const snap = this.data.snapshot;
    return Promise.resolve(snap !== null && snap.meta.index === index ? snap.data : null);
  }

  compact(index: number): Promise<void> {
    this.checkOpen();
    const first = this.data.entries[0]?.index;
    if (first !== undefined && index > first) {
      this.data.entries.splice(0, Math.min(index - first, this.data.entries.length));
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private checkOpen(): void {
    if (this.closed) throw new StorageError("STORAGE_CLOSED", "Cannot write: log is closed");
  }
}
