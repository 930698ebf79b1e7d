/**
 * Model states interned to small integers, with the model's transitions memoised: the search
 * then compares, hashes and stores integers, and calls the model once per (state, operation).
 *
 * @module
 */

import { hashString, type Model } from "./model.ts";
import type { Operation } from "./history.ts";

/** The result of a transition the model rejects. */
export const REJECTED = -1;
const UNCOMPUTED = -2;
/** Memoised transitions kept at most, in total (4 bytes each). */
const TRANSITIONS_MAX = 1 << 23;

/** Interned states of one model over one partition's operations. */
export class StateTable<S, I, O> {
  /** `states[id]` is the state interned as `id`. */
  readonly states: S[] = [];
  readonly #byHash = new Map<number, number[]>();
  /** `#transitions[id][op]`: the id after `op` from state `id`, REJECTED, or UNCOMPUTED. */
  readonly #transitions: (Int32Array | undefined)[] = [];
  #transitionsKept = 0;
  readonly #model: Model<S, I, O>;
  readonly #operations: readonly Operation<I, O>[];
  readonly #equal: (a: S, b: S) => boolean;
  readonly #hash: (state: S) => number;

  constructor(model: Model<S, I, O>, operations: readonly Operation<I, O>[]) {
    this.#model = model;
    this.#operations = operations;
    this.#equal = model.equal ?? jsonEqual;
    this.#hash = model.hash ?? jsonHash;
  }

  /** The id of `state`, interning it when new. */
  intern(state: S): number {
    const hash = this.#hash(state);
    const bucket = this.#byHash.get(hash);
    if (bucket !== undefined) {
      for (const id of bucket) if (this.#equal(this.states[id], state)) return id;
    }
    const id = this.states.length;
    this.states.push(state);
    if (bucket === undefined) this.#byHash.set(hash, [id]);
    else bucket.push(id);
    // Past the limit, transitions from new states are recomputed each time instead of kept.
    const n = this.#operations.length;
    if (this.#transitionsKept + n <= TRANSITIONS_MAX) {
      this.#transitions.push(new Int32Array(n).fill(UNCOMPUTED));
      this.#transitionsKept += n;
    } else {
      this.#transitions.push(undefined);
    }
    return id;
  }

  /** The id of the state after operation `op` from state `stateId`, or {@link REJECTED}. */
  step(stateId: number, op: number): number {
    const row = this.#transitions[stateId];
    if (row !== undefined) {
      const known = row[op];
      if (known !== UNCOMPUTED) return known;
    }
    const { input, output } = this.#operations[op];
    const [ok, next] = this.#model.step(this.states[stateId], input, output);
    const result = ok ? this.intern(next) : REJECTED;
    if (row !== undefined) row[op] = result;
    return result;
  }
}

function jsonEqual(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

function jsonHash(state: unknown): number {
  return hashString(JSON.stringify(state) ?? "undefined");
}
