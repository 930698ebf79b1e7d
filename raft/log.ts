/**
 * The Raft log as the core sees it: entries durable in Storage, followed by "unstable" entries
 * (and possibly a snapshot) the driver has not persisted yet, plus the commit and apply cursors.
 */

import { CompactedError, invariant, UnavailableError } from "./errors.ts";
import { limitSize, type Storage } from "./storage.ts";
import type { Entry, Snapshot } from "./types.ts";

/** Entries and a snapshot handed to the driver but not yet reported durable. */
class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  /** Index of entries[0]. Invariant: offset - 1 is the last durable index. */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.meta.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.meta.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset].term;
  }

  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    // Only entries of the same term at the same index: a newer leader may have replaced them.
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.meta.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: Entry[]): void {
    const after = ents[0].index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces the whole unstable tail; the driver's append truncates storage likewise.
      this.offset = after;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    invariant(
      lo >= this.offset && hi <= this.offset + this.entries.length,
      () =>
        `unstable.slice(${lo}, ${hi}) out of [${this.offset}, ${
          this.offset + this.entries.length
        })`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/** The log, with `applied <= committed <= lastIndex` enforced on every change. */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known committed. Never decreases. */
  committed: number;
  /** Highest index the application applied. Invariant: applied <= committed. */
  applied: number;
  /** Limit of the committed entries handed out in one Ready. */
  readonly maxApplyingBytes: number;

  constructor(storage: Storage, maxApplyingBytes: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.maxApplyingBytes = maxApplyingBytes;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The last index known durable (handed out and reported persisted). */
  lastStableIndex(): number {
    return this.unstable.offset - 1;
  }

  /** Term of entry `i`. Throws CompactedError / UnavailableError outside the log. */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new CompactedError(`Cannot read term of ${i}: compacted to ${dummy}`);
    if (i > this.lastIndex()) {
      throw new UnavailableError(`Cannot read term of ${i}: past the last index`);
    }
    return this.storage.term(i);
  }

  /** Term of entry `i`, or 0 if it is outside the log. */
  termOr0(i: number): number {
    try {
      return this.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return 0;
      throw e;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(i: number, t: number): boolean {
    if (i > this.lastIndex()) return false;
    try {
      return this.term(i) === t;
    } catch (e) {
      if (e instanceof CompactedError) return false;
      throw e;
    }
  }

  /** Raft §5.4.1: is a log ending at (lasti, term) at least as up-to-date as ours? */
  isUpToDate(lasti: number, term: number): boolean {
    const lastTerm = this.lastTerm();
    return term > lastTerm || (term === lastTerm && lasti >= this.lastIndex());
  }

  /**
   * The follower side of AppendEntries: if our entry at `index` has term `logTerm`, appends
   * `ents` (truncating any conflicting suffix), advances commit to min(committed, last new index)
   * and returns the last new index; otherwise returns undefined.
   */
  maybeAppend(
    index: number,
    logTerm: number,
    committed: number,
    ents: Entry[],
  ): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      invariant(
        ci > this.committed,
        () => `entry ${ci} conflicts with committed entry ${this.committed}`,
      );
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries after the given ones' predecessor; the predecessor must not be uncommitted-safe-violating. */
  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0].index - 1;
    invariant(
      after >= this.committed,
      () => `append after ${after} is below committed ${this.committed}`,
    );
    invariant(
      after <= this.lastIndex(),
      () => `append after ${after} leaves a gap after ${this.lastIndex()}`,
    );
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** Index of the first entry of `ents` that is new or conflicts with ours, or 0. */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the last index <= `index` whose term is <= `term`, with that term (0 if
   * compacted). A leader or follower uses it to skip a whole conflicting term at once.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; i >= 0; i--) {
      let t: number;
      try {
        t = this.term(i);
      } catch (e) {
        if (e instanceof CompactedError || e instanceof UnavailableError) {
          return { index: i, term: 0 };
        }
        throw e;
      }
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  /** Entries in [lo, hi), size-limited, from storage and the unstable tail. */
  slice(lo: number, hi: number, maxSizeBytes?: number): Entry[] {
    if (lo === hi) return [];
    invariant(lo < hi, () => `slice(${lo}, ${hi}): lo > hi`);
    const first = this.firstIndex();
    if (lo < first) {
      throw new CompactedError(`Cannot read entries from ${lo}: compacted to ${first - 1}`);
    }
    invariant(
      hi <= this.lastIndex() + 1,
      () => `slice(${lo}, ${hi}) beyond last ${this.lastIndex()}`,
    );
    let ents: Entry[] = [];
    const off = this.unstable.offset;
    if (lo < off) {
      ents = this.storage.entries(lo, Math.min(hi, off), maxSizeBytes);
      if (ents.length < Math.min(hi, off) - lo) return ents;
    }
    if (hi > off) {
      const u = this.unstable.slice(Math.max(lo, off), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxSizeBytes);
  }

  /** Entries from `i` to the end, size-limited. */
  entriesFrom(i: number, maxSizeBytes?: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSizeBytes);
  }

  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      invariant(
        toCommit <= this.lastIndex(),
        () =>
          `commit ${toCommit} beyond last index ${this.lastIndex()}: log corrupted, truncated or lost`,
      );
      this.committed = toCommit;
    }
  }

  /** Commits up to `maxIndex` only if that entry is of `term` (Raft §5.4.2). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOr0(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    invariant(
      this.committed >= i && i >= this.applied,
      () => `applied(${i}) out of range [applied(${this.applied}), committed(${this.committed})]`,
    );
    this.applied = i;
  }

  hasNextCommittedEntries(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  /** Committed entries not applied yet, limited in size. */
  nextCommittedEntries(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxApplyingBytes);
    return [];
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** Replaces the log with a snapshot (received from the leader). */
  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }
}
