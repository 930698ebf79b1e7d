/**
 * Pending linearizable reads on the leader (ReadIndex, Raft thesis §6.4): each request records
 * the commit index when it arrived and is answered once a quorum has acknowledged a heartbeat
 * carrying its context, proving the leader was still the leader at that moment.
 */

import { RaftError } from "./errors.ts";
import type { NodeId } from "./types.ts";

export interface ReadRequest {
  /** The commit index when the request arrived. */
  index: number;
  context: string;
  /** The member that asked (the leader itself for local requests). */
  from: NodeId;
  acks: Map<NodeId, boolean>;
}

export class ReadOnly {
  #pending = new Map<string, ReadRequest>();
  #queue: string[] = [];

  constructor(readonly maxPending: number) {}

  /** Queues a request. Duplicate contexts are ignored (the first one wins). */
  add(index: number, context: string, from: NodeId, self: NodeId): void {
    if (this.#pending.has(context)) return;
    if (this.#queue.length >= this.maxPending) {
      throw new RaftError(
        "ReadIndexDropped",
        `Cannot queue read "${context}": ${this.maxPending} reads pending`,
      );
    }
    this.#pending.set(context, { index, context, from, acks: new Map([[self, true]]) });
    this.#queue.push(context);
  }

  /** Records a heartbeat acknowledgement; returns the acks for the context, if pending. */
  recvAck(id: NodeId, context: string): ReadonlyMap<NodeId, boolean> | undefined {
    const r = this.#pending.get(context);
    if (!r) return undefined;
    r.acks.set(id, true);
    return r.acks;
  }

  /** Removes and returns the requests up to and including `context` (all are now confirmed). */
  advance(context: string): ReadRequest[] {
    const i = this.#queue.indexOf(context);
    if (i < 0) return [];
    const done = this.#queue.splice(0, i + 1).map((c) => this.#pending.get(c)!);
    for (const r of done) this.#pending.delete(r.context);
    return done;
  }

  lastPendingContext(): string | undefined {
    return this.#queue.length > 0 ? this.#queue[this.#queue.length - 1] : undefined;
  }

  pendingCount(): number {
    return this.#queue.length;
  }
}
