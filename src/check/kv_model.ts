/**
 * A key-value map whose every key is an independent register (see `register_model.ts`):
 * operations carry a `key`, absent keys read as `null`.
 *
 * Keys never interact, so the model partitions a history per key and the checker searches each
 * key's operations alone: the cost grows with the busiest key, not with the whole history.
 *
 * @module
 */

import {
  type Completion,
  HistoryError,
  type Invocation,
  type Operation,
  type Scalar,
  type Unknown,
} from "./history.ts";
import { hashString, mix32, type Model } from "./model.ts";
import {
  describeRegisterOp,
  hashScalar,
  registerOpKey,
  registerOpUnconstrained,
  stepRegister,
} from "./register_model.ts";

/** The map's state: keys with a non-null value. Never mutated; steps build a new map. */
export type KvState = ReadonlyMap<string, Scalar>;

function keyOf(input: Invocation): string {
  if (typeof input.key !== "string") {
    throw new HistoryError(`Operation "${input.f}" has no string "key": the kv model needs one`);
  }
  return input.key;
}

/** The key-value model, partitioned per key. */
export const kvModel: Model<KvState, Invocation, Completion> = {
  init: () => new Map(),
  step(state: KvState, input: Invocation, output: Completion | Unknown): [boolean, KvState] {
    const key = keyOf(input);
    const current = state.get(key) ?? null;
    const [ok, value] = stepRegister(current, input, output);
    if (!ok || value === current) return [ok, state];
    const next = new Map(state);
    if (value === null) next.delete(key);
    else next.set(key, value);
    return [true, next];
  },
  partition(operations: readonly Operation<Invocation, Completion>[]) {
    const byKey = new Map<string, Operation<Invocation, Completion>[]>();
    for (const op of operations) {
      const key = keyOf(op.input);
      const ops = byKey.get(key);
      if (ops === undefined) byKey.set(key, [op]);
      else ops.push(op);
    }
    return [...byKey.values()];
  },
  equal(a: KvState, b: KvState): boolean {
    if (a === b) return true;
    if (a.size !== b.size) return false;
    for (const [key, value] of a) if (b.get(key) !== value) return false;
    return true;
  },
  hash(state: KvState): number {
    // A sum is independent of insertion order, as equality is.
    let sum = 0;
    for (const [key, value] of state) {
      sum = (sum + mix32(hashString(key) ^ hashScalar(value))) | 0;
    }
    return sum >>> 0;
  },
  unconstrained: registerOpUnconstrained,
  operationKey: registerOpKey,
  describeOperation: (input, output) => describeRegisterOp(input, output, input.key),
  describeState: (state) => JSON.stringify(Object.fromEntries(state)),
};
