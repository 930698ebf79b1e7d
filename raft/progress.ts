/**
 * The leader's view of one follower: how much of the log it has (`match`), what to send next
 * (`next`), and the flow-control state (probe, replicate, snapshot). See raft/DESIGN.md for the
 * state diagram.
 */

import { invariant } from "./errors.ts";

/** Probe: one message at a time until the match point is found. Replicate: pipelined sends.
 * Snapshot: the follower needs a snapshot; log sends wait until it is installed. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * The in-flight MsgApp window of a follower in replicate state, as a ring buffer of the last
 * index and byte size of each message sent and not yet acknowledged. Bounded in count and bytes.
 */
export class Inflights {
  #start = 0;
  #count = 0;
  #bytes = 0;
  readonly #indexes: number[];
  readonly #sizes: number[];

  constructor(readonly maxCount: number, readonly maxBytes: number) {
    invariant(maxCount > 0, "inflights: maxCount must be positive");
    this.#indexes = new Array(maxCount).fill(0);
    this.#sizes = new Array(maxCount).fill(0);
  }

  /** Records a message whose last entry is `index`, of `bytes` payload. */
  add(index: number, bytes: number): void {
    invariant(!this.full(), "inflights: add on a full window");
    const slot = (this.#start + this.#count) % this.maxCount;
    if (this.#count > 0) {
      const prev = this.#indexes[(slot + this.maxCount - 1) % this.maxCount];
      invariant(index > prev, () => `inflights: index ${index} not above ${prev}`);
    }
    this.#indexes[slot] = index;
    this.#sizes[slot] = bytes;
    this.#count++;
    this.#bytes += bytes;
  }

  /** Frees every message whose last index is <= `index` (they were acknowledged). */
  freeLE(index: number): void {
    while (this.#count > 0 && this.#indexes[this.#start] <= index) {
      this.#bytes -= this.#sizes[this.#start];
      this.#start = (this.#start + 1) % this.maxCount;
      this.#count--;
    }
    if (this.#count === 0) this.#start = 0;
  }

  /** Frees the oldest message: lets a full window send again after losses (one probe). */
  freeFirstOne(): void {
    if (this.#count === 0) return;
    this.freeLE(this.#indexes[this.#start]);
  }

  /** True when no further message may be sent: count or byte budget exhausted. */
  full(): boolean {
    return this.#count === this.maxCount || (this.maxBytes > 0 && this.#bytes >= this.maxBytes);
  }

  count(): number {
    return this.#count;
  }

  bytes(): number {
    return this.#bytes;
  }

  reset(): void {
    this.#start = 0;
    this.#count = 0;
    this.#bytes = 0;
  }
}

/** Replication progress of one member, kept by the leader. */
export class Progress {
  /** Highest index known to be durably replicated on the member. Invariant: match < next. */
  match = 0;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = "probe";
  /** In probe state: a probe was sent and is unanswered, so the flow is paused. */
  msgAppFlowPaused = false;
  /** In snapshot state: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** In snapshot state: bytes of the snapshot the member acknowledged receiving. */
  snapshotOffsetBytes = 0;
  /** Heard from the member since the last CheckQuorum round. */
  recentActive = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: number, isLearner: boolean, maxInflight: number, maxInflightBytes: number) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  clone(): Progress {
    const p = new Progress(
      this.next,
      this.isLearner,
      this.inflights.maxCount,
      this.inflights.maxBytes,
    );
    p.match = this.match;
    p.state = this.state;
    p.msgAppFlowPaused = this.msgAppFlowPaused;
    p.pendingSnapshot = this.pendingSnapshot;
    p.snapshotOffsetBytes = this.snapshotOffsetBytes;
    p.recentActive = this.recentActive;
    // In-flight messages are not carried over: the clone starts in a fresh probe if replicating.
    if (p.state === "replicate") p.becomeProbe();
    return p;
  }

  #resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.snapshotOffsetBytes = 0;
    this.state = state;
    this.inflights.reset();
  }

  /** Back to probing, e.g. after a rejection or an unreachable report. */
  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.#resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#resetState("probe");
      this.next = this.match + 1;
    }
  }

  /** The match point is known: send optimistically, pipelined. */
  becomeReplicate(): void {
    this.#resetState("replicate");
    this.next = this.match + 1;
  }

  /** The entries the member needs were compacted: send snapshot `index` instead. */
  becomeSnapshot(index: number): void {
    this.#resetState("snapshot");
    this.pendingSnapshot = index;
  }

  /** Updates after sending a MsgApp with `entries` entries of `bytes` bytes. */
  sentEntries(entries: number, bytes: number): void {
    if (this.state === "replicate") {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1, bytes);
      }
    } else {
      invariant(this.state === "probe", () => `sending entries in state ${this.state}`);
      this.msgAppFlowPaused = true;
    }
  }

  /** Handles an acknowledgement up to `n`. Returns false if it was stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * Handles a rejection of a MsgApp whose previous index was `rejected`; `matchHint` is the
   * highest index that may match (from the follower's conflict hint). Returns false if stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** True when the leader must not send MsgApp to this member now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.msgAppFlowPaused;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}
