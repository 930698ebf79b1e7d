/**
 * Helpers for the checker's tests: compact history notation, a seeded random generator, and a
 * brute-force reference checker to compare the real one against.
 *
 * @module
 */

import type { Completion, EventType, HistoryEvent, Invocation, Operation } from "./history.ts";
import type { Model } from "./model.ts";

/** `[process, type, f, value, key?]`: one event; its index in the list is its time. */
export type EventTuple = readonly [
  process: number,
  type: EventType,
  f: string,
  value?: unknown,
  key?: string,
];

/** Events from tuples, in order (no `time`: the order is the time). */
export function history(...tuples: EventTuple[]): HistoryEvent[] {
  return tuples.map(([process, type, f, value, key]) => ({
    process,
    type,
    f,
    ...(value === undefined ? {} : { value }),
    ...(key === undefined ? {} : { key }),
  }));
}

/** A small seeded generator (mulberry32): the same seed gives the same histories. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Whether some order of `operations` is accepted by `model` and respects real time (an
 * operation that returned before another was called comes first). Tries every such order:
 * only for a handful of operations.
 */
export function bruteForceLinearizable<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
): boolean {
  if (operations.length > 10) throw new RangeError("too many operations to brute-force");
  const remaining = new Set(operations);
  const search = (state: S): boolean => {
    if (remaining.size === 0) return true;
    let firstReturn = Infinity;
    for (const op of remaining) firstReturn = Math.min(firstReturn, op.returnTime);
    for (const op of [...remaining]) {
      if (op.callTime > firstReturn) continue;
      const [ok, next] = model.step(state, op.input, op.output);
      if (!ok) continue;
      remaining.delete(op);
      const found = search(next);
      remaining.add(op);
      if (found) return true;
    }
    return false;
  };
  return search(model.init());
}

/** Whether `order` is a valid linearization of its operations: model-accepted, real-time. */
export function isValidLinearization<S, I, O>(
  model: Model<S, I, O>,
  order: readonly Operation<I, O>[],
): boolean {
  let state = model.init();
  for (const op of order) {
    const [ok, next] = model.step(state, op.input, op.output);
    if (!ok) return false;
    state = next;
  }
  for (let i = 0; i < order.length; i++) {
    for (let j = i + 1; j < order.length; j++) {
      if (order[j].returnTime < order[i].callTime) return false;
    }
  }
  return true;
}

/**
 * A history of a correct register: `processes` clients each run operations one after another;
 * every operation takes effect atomically at an instant inside its interval. Some operations
 * are left with an unknown outcome (`info`) though they took effect, or not.
 */
export function linearizableRegisterHistory(
  random: () => number,
  options: { processes: number; operations: number; values: number; keys?: number },
): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const store = new Map<string | undefined, unknown>();
  interface Running {
    readonly process: number;
    readonly invocation: Invocation;
    applied: boolean;
    completion?: Completion;
  }
  const running = new Map<number, Running>();
  let started = 0;
  const pick = (count: number) => Math.floor(random() * count);
  while (started < options.operations || running.size > 0) {
    const idle = [...Array(options.processes).keys()].filter((p) => !running.has(p));
    const choice = random();
    if (choice < 0.4 && idle.length > 0 && started < options.operations) {
      const process = idle[pick(idle.length)];
      const key = options.keys === undefined ? undefined : `k${pick(options.keys)}`;
      const kind = pick(3);
      const invocation: Invocation = kind === 0
        ? { f: "read", value: null }
        : kind === 1
        ? { f: "write", value: pick(options.values) }
        : { f: "cas", value: [pick(options.values), pick(options.values)] };
      running.set(process, {
        process,
        invocation: key === undefined ? invocation : { ...invocation, key },
        applied: false,
      });
      events.push({ process, type: "invoke", f: invocation.f, key, value: invocation.value });
      started++;
    } else if (choice < 0.75) {
      // The linearization point of some running operation.
      const candidates = [...running.values()].filter((r) => !r.applied);
      if (candidates.length === 0) continue;
      const r = candidates[pick(candidates.length)];
      r.applied = true;
      const key = r.invocation.key;
      const current = store.get(key) ?? null;
      if (r.invocation.f === "read") r.completion = { type: "ok", value: current };
      else if (r.invocation.f === "write") {
        store.set(key, r.invocation.value);
        r.completion = { type: "ok", value: r.invocation.value };
      } else {
        const [from, to] = r.invocation.value as [number, number];
        if (current === from) store.set(key, to);
        r.completion = { type: current === from ? "ok" : "fail", value: r.invocation.value };
      }
    } else {
      // A completion; occasionally the client loses the answer (or the request).
      const candidates = [...running.values()].filter((r) => r.applied || random() < 0.1);
      if (candidates.length === 0) continue;
      const r = candidates[pick(candidates.length)];
      running.delete(r.process);
      const completion = random() < 0.1 ? undefined : r.completion;
      events.push({
        process: r.process,
        type: completion?.type ?? "info",
        f: r.invocation.f,
        key: r.invocation.key,
        value: completion?.value,
      });
    }
  }
  return events.map((event) => {
    const { key, value, ...rest } = event;
    return {
      ...rest,
      ...(key === undefined ? {} : { key }),
      ...(value === undefined ? {} : { value }),
    };
  });
}
