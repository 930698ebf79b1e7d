/**
 * The sequential specification the checker holds a concurrent history against.
 *
 * @module
 */

import type { Operation, Unknown } from "./history.ts";

/**
 * A sequential model of the system under test, over states `S`, inputs `I` and outputs `O`.
 *
 * `step` must be a pure function: the checker calls it many times with the same arguments
 * while it backtracks, and keeps the states it returns (they must not be mutated afterwards).
 */
export interface Model<S, I, O> {
  /** The state before any operation. */
  init(): S;
  /**
   * Applies `input` to `state`. Returns whether `output` is a result the operation could give
   * in `state`, and the state after it. `output` is {@link Unknown} when the outcome is not
   * known: any state satisfies it, but the next state must still be the operation's effect.
   */
  step(state: S, input: I, output: O | Unknown): [ok: boolean, next: S];
  /**
   * Splits a history into independent sub-histories (P-compositionality): the whole is
   * linearizable exactly when every part is. Per-key partitions of a key-value map make large
   * histories cheap. Without it the history is checked whole.
   */
  partition?(operations: readonly Operation<I, O>[]): Operation<I, O>[][];
  /** Whether two states are the same; defaults to comparing their JSON encodings. */
  equal?(a: S, b: S): boolean;
  /** A 32-bit hash consistent with `equal`; defaults to a hash of the JSON encoding. */
  hash?(state: S): number;
  /**
   * Whether the operation neither constrains nor changes any state (for example a read whose
   * result is unknown); the checker drops such operations before searching.
   */
  unconstrained?(input: I, output: O | Unknown): boolean;
  /**
   * A key that is equal for two operations exactly when `step` treats them alike (same input,
   * same output) in every state, or `undefined` for an operation like no other. It lets the
   * checker skip orders that only swap interchangeable operations; without it none are skipped.
   */
  operationKey?(input: I, output: O | Unknown): string | undefined;
  /** Human-readable operation, for explanations: `write(3)`, `read() -> 3`. */
  describeOperation?(input: I, output: O | Unknown): string;
  /** Human-readable state, for explanations. */
  describeState?(state: S): string;
}

/** FNV-1a over the UTF-16 code units of `text`: a cheap 32-bit string hash. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Mixes a 32-bit integer so that nearby values land far apart (murmur3 finaliser). */
export function mix32(value: number): number {
  let h = value | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
