/**
 * The search at the heart of the checker: Wing & Gong's depth-first search for a linearization,
 * with Lowe's memoisation of visited configurations, over one (partition of a) history.
 *
 * The history is a doubly linked list of call and return entries in time order. The search walks
 * it from the front: at a call it tries to linearize that operation next (the model accepts its
 * output in the current state, and the configuration is new), and if so removes ("lifts") the
 * call and its return from the list and restarts from the front; at a return whose call is still
 * in the list, that operation had to take effect before this point and none of the orders tried
 * allow it, so the search backtracks: it undoes the last linearized operation and tries the call
 * after it. A configuration is (set of linearized operations, model state); two paths that reach
 * the same one have the same future, so each is explored once.
 *
 * @module
 */

import type { Operation } from "./history.ts";
import { ConfigSet } from "./config_set.ts";
import { mix32, type Model } from "./model.ts";
import { REJECTED, StateTable } from "./state_table.ts";

/** The limits a search stops at, shared by every partition of one check. */
export interface SearchBudget {
  /** `performance.now()` value after which the search gives up; `Infinity` for none. */
  readonly deadlineMs: number;
  /** Search steps after which the search gives up; `Infinity` for none. */
  readonly stepsMax: number;
  /** Bytes the table of visited configurations may take, per partition. */
  readonly visitedBytesMax: number;
  /** Steps taken so far, across partitions. */
  steps: number;
}

/** Why a search gave up without a verdict. */
export type UnknownReason = "timeout" | "steps" | "memory";

/** The verdict on one partition, with the evidence for it. */
export type SearchOutcome<S, I, O> =
  | {
    readonly kind: "linearizable";
    /** Every operation, in an order the model accepts that respects real time. */
    readonly linearization: Operation<I, O>[];
  }
  | {
    readonly kind: "not-linearizable" | "unknown";
    readonly unknownReason?: UnknownReason;
    /** The longest linearizable prefix the search found, in linearization order. */
    readonly prefix: Operation<I, O>[];
    readonly stateAfterPrefix: S;
    /**
     * When not linearizable: the operations that could come next after `prefix` in real-time
     * order; the model rejects each of them in `stateAfterPrefix`.
     */
    readonly unplaceable: Operation<I, O>[];
  };

const NIL = -1;
/** How many steps pass between two reads of the clock. */
const CLOCK_EVERY_STEPS = 1024;

/** Searches for a linearization of `operations` (one partition) under `model`. */
export function searchLinearization<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  budget: SearchBudget,
): SearchOutcome<S, I, O> {
  const n = operations.length;

  // Entries 0..2n-1 in time order; entry 2n is the list head. A call sorts before a return at
  // the same time, so operations that touch at an instant count as concurrent.
  const order: number[] = [];
  for (let op = 0; op < n; op++) {
    const { callTime, returnTime } = operations[op];
    if (!(callTime <= returnTime)) {
      throw new RangeError(
        `Operation ${operations[op].id} returns (${returnTime}) before it is called (${callTime})`,
      );
    }
    order.push(2 * op, 2 * op + 1);
  }
  const timeOf = (code: number) =>
    code & 1 ? operations[code >> 1].returnTime : operations[code >> 1].callTime;
  order.sort((a, b) => {
    const ta = timeOf(a), tb = timeOf(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    return (a & 1) - (b & 1) || a - b;
  });

  const head = 2 * n;
  const entryOp = new Int32Array(2 * n);
  const isCall = new Uint8Array(2 * n);
  const match = new Int32Array(2 * n).fill(NIL); // call entry -> its return entry
  const callPos = new Int32Array(n);
  const returnPos = new Int32Array(n);
  for (let pos = 0; pos < order.length; pos++) {
    const op = order[pos] >> 1;
    entryOp[pos] = op;
    if (order[pos] & 1) returnPos[op] = pos;
    else {
      isCall[pos] = 1;
      callPos[op] = pos;
    }
  }
  for (let op = 0; op < n; op++) match[callPos[op]] = returnPos[op];

  const next = new Int32Array(2 * n + 1);
  const prev = new Int32Array(2 * n + 1);
  for (let pos = 0; pos < 2 * n; pos++) {
    next[pos] = pos + 1 < 2 * n ? pos + 1 : NIL;
    prev[pos] = pos === 0 ? head : pos - 1;
  }
  next[head] = n > 0 ? 0 : NIL;
  prev[head] = NIL;

  const before = interchangeablePredecessors(model, operations, callPos, returnPos);

  const lift = (call: number) => {
    next[prev[call]] = next[call];
    prev[next[call]] = prev[call]; // a call always has its return after it
    const ret = match[call];
    next[prev[ret]] = next[ret];
    if (next[ret] !== NIL) prev[next[ret]] = prev[ret];
  };
  const unlift = (call: number) => {
    const ret = match[call];
    next[prev[ret]] = ret;
    if (next[ret] !== NIL) prev[next[ret]] = ret;
    next[prev[call]] = call;
    prev[next[call]] = call;
  };

  // Zobrist hashing: the hash of a set is the XOR of its members' random codes, so adding or
  // removing an operation updates it in O(1).
  const zobrist = zobristCodes(n);
  const linearized = new Uint32Array(Math.max(1, Math.ceil(n / 32)));
  let linearizedHash = 0;
  const visited = new ConfigSet(linearized.length, budget.visitedBytesMax);
  const states = new StateTable(model, operations);

  // The stack of linearized calls, with the state before each.
  const stackEntry = new Int32Array(n);
  const stackState = new Int32Array(n);
  let depth = 0;
  let state = states.intern(model.init());
  // The deepest stack seen. It is copied lazily, at the first pop after it grew: until then the
  // stack itself still holds it, and a search that never backtracks copies nothing.
  let best = { depth: 0, prefix: [] as number[], state };
  let bestDepth = 0;
  const saveBest = () => {
    if (bestDepth > best.depth) {
      if (depth !== bestDepth) throw new Error("invariant: the deepest stack was lost unsaved");
      best = { depth, prefix: Array.from(stackEntry.subarray(0, depth)), state };
    }
  };

  let entry = next[head];
  while (next[head] !== NIL) {
    budget.steps++;
    if (budget.steps > budget.stepsMax) return stopped("steps");
    if (budget.steps % CLOCK_EVERY_STEPS === 0 && performance.now() > budget.deadlineMs) {
      return stopped("timeout");
    }
    if (entry === NIL) throw new Error("invariant: the search ran past the last return entry");
    if (isCall[entry]) {
      const op = entryOp[entry];
      const first = before[op];
      if (first !== NIL && !(linearized[first >>> 5] & (1 << (first & 31)))) {
        entry = next[entry];
        continue;
      }
      const nextState = states.step(state, op);
      if (nextState !== REJECTED) {
        linearized[op >>> 5] |= 1 << (op & 31);
        const nextHash = linearizedHash ^ zobrist[op];
        if (visited.add(linearized, nextState, nextHash ^ mix32(nextState))) {
          if (visited.full) return stopped("memory");
          stackEntry[depth] = entry;
          stackState[depth] = state;
          depth++;
          state = nextState;
          linearizedHash = nextHash;
          lift(entry);
          bestDepth = Math.max(bestDepth, depth);
          entry = next[head];
          continue;
        }
        linearized[op >>> 5] &= ~(1 << (op & 31));
      }
      entry = next[entry];
    } else {
      // A return whose call is not linearized: no order tried so far places it in time.
      if (depth === 0) return stuck();
      saveBest();
      depth--;
      entry = stackEntry[depth];
      state = stackState[depth];
      const op = entryOp[entry];
      linearized[op >>> 5] &= ~(1 << (op & 31));
      linearizedHash ^= zobrist[op];
      unlift(entry);
      entry = next[entry];
    }
  }
  if (depth !== n) throw new Error(`invariant: linearized ${depth} of ${n} operations`);
  return {
    kind: "linearizable",
    linearization: Array.from(stackEntry.subarray(0, depth), (e) => operations[entryOp[e]]),
  };

  function bestPrefix(): Operation<I, O>[] {
    return best.prefix.map((e) => operations[entryOp[e]]);
  }

  function stopped(reason: UnknownReason): SearchOutcome<S, I, O> {
    saveBest();
    return {
      kind: "unknown",
      unknownReason: reason,
      prefix: bestPrefix(),
      stateAfterPrefix: states.states[best.state],
      unplaceable: [],
    };
  }

  function stuck(): SearchOutcome<S, I, O> {
    // The operations that could follow the best prefix in real time: those not in it whose call
    // comes before the earliest return among them. The best prefix is maximal, so the model
    // rejects every one of them in the state after it.
    const inPrefix = new Uint8Array(n);
    for (const e of best.prefix) inPrefix[entryOp[e]] = 1;
    let firstReturn = Infinity;
    for (let op = 0; op < n; op++) {
      if (!inPrefix[op]) firstReturn = Math.min(firstReturn, returnPos[op]);
    }
    const unplaceable: Operation<I, O>[] = [];
    for (let op = 0; op < n; op++) {
      if (!inPrefix[op] && callPos[op] < firstReturn) unplaceable.push(operations[op]);
    }
    unplaceable.sort((a, b) => a.callTime - b.callTime || a.id - b.id);
    return {
      kind: "not-linearizable",
      prefix: bestPrefix(),
      stateAfterPrefix: states.states[best.state],
      unplaceable,
    };
  }
}

/**
 * Symmetry reduction. Two operations with the same `model.operationKey` step identically, so when
 * one of them (A) is called before the other (B) and also returns before it, any linearization
 * that places B before A stays valid with the two swapped. The search may therefore insist that A
 * comes first: it skips B until A is linearized. Among many unknown-outcome writes of the same
 * value this removes most orders from the search.
 *
 * Returns, for each operation, the one it must follow, or NIL. (All such constraints hold at once
 * in the linearization that, among interchangeable operations, always places the available one
 * that returns first.)
 */
function interchangeablePredecessors<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  callPos: Int32Array,
  returnPos: Int32Array,
): Int32Array {
  const n = operations.length;
  const before = new Int32Array(n).fill(NIL);
  if (model.operationKey === undefined) return before;
  const lastOfKey = new Map<string, number>();
  const byCall = Array.from({ length: n }, (_, op) => op).sort((a, b) => callPos[a] - callPos[b]);
  for (const op of byCall) {
    const key = model.operationKey(operations[op].input, operations[op].output);
    if (key === undefined) continue;
    const last = lastOfKey.get(key);
    if (last !== undefined && returnPos[last] < returnPos[op]) before[op] = last;
    lastOfKey.set(key, op);
  }
  return before;
}

/** Random 32-bit codes from a fixed seed, so runs are reproducible. */
function zobristCodes(count: number): Uint32Array {
  const codes = new Uint32Array(count);
  let seed = 0x9e3779b9;
  for (let i = 0; i < count; i++) {
    seed = (seed + 0x6d2b79f5) | 0;
    codes[i] = mix32(seed);
  }
  return codes;
}
