/**
 * Client histories: the events a test records (one per invocation and one per completion, per
 * client process) and the operations the checker searches over (an invocation paired with its
 * completion).
 *
 * @module
 */

/** A value a register or key-value entry can hold; `null` is "no value". */
export type Scalar = string | number | boolean | null;

/** What kind of event a history line records, as Jepsen names them. */
export type EventType = "invoke" | "ok" | "fail" | "info";

/**
 * One event of a client history.
 *
 * - `invoke`: the client started operation `f` with argument `value`.
 * - `ok`: it completed; `value` is its result (for a read, the value read).
 * - `fail`: it completed with a definite negative outcome (a compare-and-set that ran and saw
 *   another value; for other operations, an operation that did not take effect).
 * - `info`: its outcome is unknown: it may have taken effect, or not, at any time after its
 *   invocation.
 */
export interface HistoryEvent {
  /** The client process; a process runs one operation at a time. */
  readonly process: string | number;
  readonly type: EventType;
  /** The operation's name: `read`, `write`, `cas` for the bundled models. */
  readonly f: string;
  /** The key, for key-value histories. */
  readonly key?: string;
  /** Argument on `invoke`, result on completion; `[from, to]` for `cas`. */
  readonly value?: unknown;
  /** Monotonic timestamp; when no event has one, the order of events is the order in time. */
  readonly time?: number;
}

/** The invocation half of an operation, given to a model's `step`. */
export interface Invocation {
  readonly f: string;
  readonly key?: string;
  readonly value: unknown;
}

/** The definite completion of an operation, given to a model's `step`. */
export interface Completion {
  readonly type: "ok" | "fail";
  readonly value: unknown;
}

/**
 * The output of an operation whose outcome is unknown (`info`, or never completed). Every state
 * satisfies it; the model still decides the state the operation leaves behind.
 */
export const UNKNOWN: unique symbol = Symbol("unknown outcome");
/** The type of {@link UNKNOWN}. */
export type Unknown = typeof UNKNOWN;

/** An operation: an invocation and its completion, with the interval in which it took effect. */
export interface Operation<I, O> {
  /** Position of the operation in the history, in invocation order; unique. */
  readonly id: number;
  readonly process: string | number;
  readonly input: I;
  /** The completion, or {@link UNKNOWN}. */
  readonly output: O | Unknown;
  readonly callTime: number;
  /** `Infinity` when the outcome is unknown: the operation may take effect at any later time. */
  readonly returnTime: number;
}

/** The operations the bundled models check: JSON-ish invocations and completions. */
export type HistoryOperation = Operation<Invocation, Completion>;

/**
 * A history that cannot be checked: events that do not pair into operations, or an operation
 * the model does not know. The message names the event or operation at fault.
 */
export class HistoryError extends Error {
  override name = "HistoryError";
}

/**
 * Pairs each invocation with the next completion of the same process.
 *
 * Operations that end with `info`, or never complete, get output {@link UNKNOWN} and return
 * time `Infinity`. Times come from `time` when every event has one (events are then ordered by
 * it, stably), otherwise from the position of the event in `events`.
 *
 * @throws {HistoryError} when a process invokes while it has an operation pending, completes
 * without a pending operation, or completes a different `f` than it invoked.
 */
export function eventsToOperations(events: readonly HistoryEvent[]): HistoryOperation[] {
  const timed = events.filter((e) => e.time !== undefined).length;
  if (timed !== 0 && timed !== events.length) {
    throw new HistoryError(
      `Cannot order history: ${timed} of ${events.length} events have a "time"; ` +
        `give every event a time or none`,
    );
  }
  const ordered = events.map((event, index) => ({ event, index, time: event.time ?? index }));
  if (timed !== 0) {
    for (const { event, index } of ordered) {
      if (!Number.isFinite(event.time)) {
        throw new HistoryError(`Cannot order history: event ${index} has time ${event.time}`);
      }
    }
    ordered.sort((a, b) => a.time - b.time || a.index - b.index);
  }

  interface Pending {
    readonly id: number;
    readonly index: number;
    readonly event: HistoryEvent;
    readonly callTime: number;
  }
  const pending = new Map<string | number, Pending>();
  const operations: (HistoryOperation | undefined)[] = [];
  let nextId = 0;

  for (const { event, index, time } of ordered) {
    const open = pending.get(event.process);
    if (event.type === "invoke") {
      if (open !== undefined) {
        throw new HistoryError(
          `Cannot pair events: process ${String(event.process)} invoked "${event.f}" at event ` +
            `${index} while its "${open.event.f}" from event ${open.index} is still pending`,
        );
      }
      pending.set(event.process, { id: nextId, index, event, callTime: time });
      operations.push(undefined);
      nextId++;
      continue;
    }
    if (open === undefined) {
      throw new HistoryError(
        `Cannot pair events: process ${String(event.process)} completed "${event.f}" ` +
          `(${event.type}) at event ${index} without a pending invocation`,
      );
    }
    if (open.event.f !== event.f) {
      throw new HistoryError(
        `Cannot pair events: process ${String(event.process)} invoked "${open.event.f}" at ` +
          `event ${open.index} but completed "${event.f}" at event ${index}`,
      );
    }
    pending.delete(event.process);
    const unknown = event.type === "info";
    operations[open.id] = {
      id: open.id,
      process: event.process,
      input: invocationOf(open.event),
      output: unknown ? UNKNOWN : { type: event.type, value: event.value },
      callTime: open.callTime,
      returnTime: unknown ? Infinity : time,
    };
  }
  for (const open of pending.values()) {
    operations[open.id] = {
      id: open.id,
      process: open.event.process,
      input: invocationOf(open.event),
      output: UNKNOWN,
      callTime: open.callTime,
      returnTime: Infinity,
    };
  }
  return operations.map((op, id) => {
    if (op === undefined) throw new Error(`invariant: operation ${id} was never built`);
    return op;
  });
}

function invocationOf(event: HistoryEvent): Invocation {
  return event.key === undefined
    ? { f: event.f, value: event.value }
    : { f: event.f, key: event.key, value: event.value };
}

/** Whether `value` is a {@link Scalar}. */
export function isScalar(value: unknown): value is Scalar {
  return value === null || typeof value === "string" || typeof value === "boolean" ||
    (typeof value === "number" && Number.isFinite(value));
}
