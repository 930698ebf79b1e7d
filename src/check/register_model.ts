/**
 * A single register with read, write and compare-and-set, starting empty (`null`).
 *
 * Outcomes, per operation (`value` is the invocation's argument; `[from, to]` for `cas`):
 *
 * | f       | ok                   | fail                   | unknown                  |
 * | ------- | -------------------- | ---------------------- | ------------------------ |
 * | `read`  | state is the value   | did not happen         | constrains nothing       |
 * | `write` | state becomes value  | did not happen         | state becomes value      |
 * | `cas`   | state `from` -> `to` | ran, state not `from`  | swaps if state is `from` |
 *
 * A failed `cas` is a definite observation (etcd answers it after comparing), not an operation
 * that never ran.
 *
 * @module
 */

import {
  type Completion,
  HistoryError,
  type Invocation,
  isScalar,
  type Scalar,
  UNKNOWN,
  type Unknown,
} from "./history.ts";
import { hashString, mix32, type Model } from "./model.ts";

/**
 * Applies one register operation to `current`: whether its outcome is possible there, and the
 * value after it.
 *
 * @throws {HistoryError} for an operation the register does not know or a malformed argument.
 */
export function stepRegister(
  current: Scalar,
  input: Invocation,
  output: Completion | Unknown,
): [ok: boolean, next: Scalar] {
  switch (input.f) {
    case "read":
      if (output === UNKNOWN || output.type === "fail") return [true, current];
      return [current === output.value, current];
    case "write": {
      const value = input.value;
      if (!isScalar(value)) {
        throw new HistoryError(`Cannot write ${JSON.stringify(value)}: not a scalar value`);
      }
      if (output !== UNKNOWN && output.type === "fail") return [true, current];
      return [true, value];
    }
    case "cas": {
      const [from, to] = casArguments(input.value);
      const swaps = current === from;
      if (output === UNKNOWN) return [true, swaps ? to : current];
      return output.type === "ok" ? [swaps, swaps ? to : current] : [!swaps, current];
    }
    default:
      throw new HistoryError(
        `Unsupported operation "${input.f}": the register model knows read, write and cas`,
      );
  }
}

/** The `[from, to]` argument of a compare-and-set. */
export function casArguments(value: unknown): [from: Scalar, to: Scalar] {
  if (!Array.isArray(value) || value.length !== 2 || !isScalar(value[0]) || !isScalar(value[1])) {
    throw new HistoryError(`Cannot compare-and-set with ${JSON.stringify(value)}: want [from, to]`);
  }
  return value as [Scalar, Scalar];
}

/** A 32-bit hash of a scalar; equal scalars hash alike. */
export function hashScalar(value: Scalar): number {
  if (value === null) return 0x2545f491;
  if (typeof value === "boolean") return value ? 0x1b873593 : 0x3c6ef372;
  if (typeof value === "number" && Number.isInteger(value) && Math.abs(value) < 2 ** 31) {
    return mix32(value);
  }
  return hashString(typeof value === "number" ? `n${value}` : value);
}

/** Whether a register operation neither constrains nor changes the register. */
export function registerOpUnconstrained(input: Invocation, output: Completion | Unknown): boolean {
  if (input.f === "read") return output === UNKNOWN || output.type === "fail";
  return input.f === "write" && output !== UNKNOWN && output.type === "fail";
}

/**
 * `read() -> 3`, `write(3)`, `cas(3, 4) -> fail`, with `?` for an unknown outcome; the key, when
 * given, comes first: `read("k") -> 3`.
 */
export function describeRegisterOp(
  input: Invocation,
  output: Completion | Unknown,
  key?: string,
): string {
  const outcome = output === UNKNOWN ? "?" : output.type;
  const args = key === undefined ? [] : [show(key)];
  switch (input.f) {
    case "read": {
      const result = output === UNKNOWN ? "?" : output.type === "ok" ? show(output.value) : "fail";
      return `read(${args.join(", ")}) -> ${result}`;
    }
    case "write":
      args.push(show(input.value));
      return `write(${args.join(", ")})${outcome === "ok" ? "" : ` -> ${outcome}`}`;
    case "cas":
      if (Array.isArray(input.value)) args.push(...input.value.map(show));
      return `cas(${args.join(", ")}) -> ${outcome}`;
    default:
      if (input.value !== undefined) args.push(show(input.value));
      return `${input.f}(${args.join(", ")}) -> ${outcome}`;
  }
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** Equal for register operations with the same key, input and outcome. */
export function registerOpKey(input: Invocation, output: Completion | Unknown): string {
  const outcome = output === UNKNOWN ? null : [output.type, output.value];
  return JSON.stringify([input.f, input.key ?? null, input.value ?? null, outcome]);
}

/** The register model: a single value, `null` until the first write. */
export const registerModel: Model<Scalar, Invocation, Completion> = {
  init: () => null,
  step: stepRegister,
  equal: (a, b) => a === b,
  hash: hashScalar,
  unconstrained: registerOpUnconstrained,
  operationKey: registerOpKey,
  describeOperation: (input, output) => describeRegisterOp(input, output),
  describeState: (state) => JSON.stringify(state),
};
