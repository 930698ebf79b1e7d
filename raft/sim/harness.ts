/**
 * A small deterministic cluster for scenario tests: an honest driver per node (persist, send,
 * apply, advance), a message queue delivered in order, and filters for partitions and drops.
 */

import { decodeConfChange } from "../confchange.ts";
import type { Config } from "../config.ts";
import { seededRandom } from "../random.ts";
import { RawNode } from "../raw_node.ts";
import { MemoryStorage } from "../storage.ts";
import type { ConfState, Entry, Message, NodeId } from "../types.ts";

export interface HarnessNode {
  id: NodeId;
  storage: MemoryStorage;
  raw: RawNode | null;
  /** Entries applied by the state machine, in order (restored from snapshots as `snapshot@i`). */
  applied: { index: number; term: number; data: string }[];
  conf: ConfState;
  readStates: { index: number; context: string }[];
}

export type ConfigOverrides = Partial<Omit<Config, "id" | "storage">>;

const decoder = new TextDecoder();

export class Harness {
  readonly nodes = new Map<NodeId, HarnessNode>();
  queue: Message[] = [];
  /** Drop a message when this returns true (partitions, targeted losses). */
  drop: (m: Message) => boolean = () => false;
  readonly #overrides: ConfigOverrides;
  seed = 1;

  /** Bootstraps `voters` as a new cluster; `extra` nodes start empty (to join later). */
  constructor(voters: NodeId[], overrides: ConfigOverrides = {}, extra: NodeId[] = []) {
    this.#overrides = overrides;
    for (const id of voters) {
      const storage = new MemoryStorage();
      RawNode.bootstrap(storage, voters);
      this.#add(id, storage);
    }
    for (const id of extra) this.#add(id, new MemoryStorage());
  }

  #add(id: NodeId, storage: MemoryStorage): void {
    const n: HarnessNode = {
      id,
      storage,
      raw: null,
      applied: [],
      conf: storage.initialState().confState,
      readStates: [],
    };
    this.nodes.set(id, n);
    this.start(id);
  }

  config(id: NodeId, storage: MemoryStorage, applied: number): Config {
    return {
      id,
      electionTicks: 10,
      heartbeatTicks: 1,
      storage,
      applied,
      maxSizePerMsgBytes: 1024 * 1024,
      maxInflightMsgs: 256,
      preVote: true,
      checkQuorum: true,
      readOnly: "safe",
      random: seededRandom(this.seed++ * 7919 + id.length),
      ...this.#overrides,
    };
  }

  /** (Re)starts a node from its durable storage. */
  start(id: NodeId): void {
    const n = this.node(id);
    const snap = n.storage.snapshot();
    n.raw = new RawNode(this.config(id, n.storage, snap.meta.index));
    n.applied = snap.meta.index > 1
      ? [{ index: snap.meta.index, term: snap.meta.term, data: "snapshot" }]
      : [];
    n.conf = snap.meta.conf;
  }

  /** Loses everything not persisted. */
  crash(id: NodeId): void {
    this.node(id).raw = null;
    this.queue = this.queue.filter((m) => m.to !== id);
  }

  node(id: NodeId): HarnessNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  raw(id: NodeId): RawNode {
    const r = this.node(id).raw;
    if (!r) throw new Error(`node ${id} is down`);
    return r;
  }

  /** Cuts every link between the two groups (both directions). */
  partition(a: NodeId[], b: NodeId[]): void {
    const A = new Set(a);
    const B = new Set(b);
    const prev = this.drop;
    this.drop = (m) => (A.has(m.from) && B.has(m.to)) || (B.has(m.from) && A.has(m.to)) || prev(m);
  }

  /** Cuts a node off from everyone. */
  isolate(id: NodeId): void {
    const prev = this.drop;
    this.drop = (m) => m.from === id || m.to === id || prev(m);
  }

  heal(): void {
    this.drop = () => false;
  }

  /** Runs one driver iteration on a node; returns true if there was a Ready. */
  #process(n: HarnessNode): boolean {
    const raw = n.raw;
    if (!raw || !raw.hasReady()) return false;
    const rd = raw.ready();
    this.queue.push(...rd.messages);
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    this.queue.push(...rd.messagesAfterPersist);
    if (rd.snapshot) {
      n.applied = [{
        index: rd.snapshot.meta.index,
        term: rd.snapshot.meta.term,
        data: "snapshot",
      }];
      n.conf = rd.snapshot.meta.conf;
    }
    for (const e of rd.committedEntries) this.#apply(n, e);
    n.readStates.push(...rd.readStates);
    raw.advance(rd);
    return true;
  }

  #apply(n: HarnessNode, e: Entry): void {
    n.applied.push({
      index: e.index,
      term: e.term,
      data: e.type === "conf" ? "conf" : decoder.decode(e.data),
    });
    if (e.type === "conf") n.conf = n.raw!.applyConfChange(decodeConfChange(e.data));
  }

  /** Delivers queued messages and processes Readys until nothing moves (bounded). */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const n of this.nodes.values()) moved = this.#process(n) || moved;
      const q = this.queue;
      this.queue = [];
      for (const m of q) {
        moved = true;
        if (this.drop(m)) continue;
        this.nodes.get(m.to)?.raw?.step(m);
      }
      if (!moved) return;
    }
    throw new Error(`cluster did not stabilize within ${maxRounds} rounds`);
  }

  /** Ticks the given nodes (default: all running) `n` times, stabilizing after each tick. */
  tick(n = 1, ids?: NodeId[]): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) {
        if (ids && !ids.includes(node.id)) continue;
        node.raw?.tick();
      }
      this.stabilize();
    }
  }

  /** Campaigns on `id` and stabilizes. */
  campaign(id: NodeId): void {
    this.raw(id).campaign();
    this.stabilize();
  }

  propose(id: NodeId, data: string): number {
    const i = this.raw(id).propose(new TextEncoder().encode(data));
    this.stabilize();
    return i;
  }

  /** The ids of running nodes that consider themselves leader, with their terms. */
  leaders(): { id: NodeId; term: number }[] {
    const out: { id: NodeId; term: number }[] = [];
    for (const n of this.nodes.values()) {
      const s = n.raw?.status();
      if (s?.role === "leader") out.push({ id: n.id, term: s.term });
    }
    return out;
  }

  /** Ticks until exactly one leader of the highest term exists among `ids`; returns it. */
  waitLeader(maxTicks = 200, ids?: NodeId[]): NodeId {
    for (let t = 0; t < maxTicks; t++) {
      const ls = this.leaders().filter((l) => !ids || ids.includes(l.id));
      if (ls.length > 0) {
        const top = ls.reduce((a, b) => (a.term >= b.term ? a : b));
        return top.id;
      }
      this.tick(1);
    }
    throw new Error(`no leader within ${maxTicks} ticks`);
  }

  appliedData(id: NodeId): string[] {
    return this.node(id).applied.map((a) => a.data);
  }
}
