/**
 * The linearizability checker: drops operations that constrain nothing, splits the history into
 * the model's independent partitions, and searches each within one time and step budget.
 *
 * @module
 */

import {
  type Completion,
  eventsToOperations,
  type HistoryEvent,
  type Invocation,
  type Operation,
} from "./history.ts";
import type { Model } from "./model.ts";
import { type SearchBudget, searchLinearization, type UnknownReason } from "./search.ts";

/** `unknown` means the search stopped at its time or step limit before reaching a verdict. */
export type Verdict = "linearizable" | "not-linearizable" | "unknown";

/** Limits on one check. */
export interface CheckOptions {
  /** Wall-clock limit for the whole check; default {@link DEFAULT_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** Limit on search steps for the whole check; default none. */
  readonly stepsMax?: number;
  /**
   * Limit on the memory that records visited configurations, per partition; default
   * {@link DEFAULT_VISITED_BYTES_MAX}.
   */
  readonly visitedBytesMax?: number;
}

/** The memory limit for visited configurations unless the caller gives one: 512 MiB. */
export const DEFAULT_VISITED_BYTES_MAX = 512 * 1024 * 1024;

/** The wall-clock limit of a check unless the caller gives one. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** Where the search got stuck, for a history that is not linearizable (or timed out). */
export interface Explanation<S, I, O> {
  /** Index of the partition in `CheckResult.partitionSizes`. */
  readonly partition: number;
  /** The longest linearizable prefix found, in linearization order. */
  readonly prefix: readonly Operation<I, O>[];
  /** The model state after `prefix`. */
  readonly stateAfterPrefix: S;
  /**
   * The operations that real time allows next after `prefix`, every one of which the model
   * rejects in `stateAfterPrefix`; empty when the check timed out.
   */
  readonly unplaceable: readonly Operation<I, O>[];
}

/** The outcome of a check. */
export interface CheckResult<S, I, O> {
  readonly verdict: Verdict;
  /** Set when `verdict` is `unknown`. */
  readonly unknownReason?: UnknownReason;
  /** Operations in each partition searched (operations that constrain nothing are dropped). */
  readonly partitionSizes: readonly number[];
  /** Operations dropped because they constrain nothing (e.g. reads with unknown results). */
  readonly droppedOperations: number;
  readonly steps: number;
  readonly elapsedMs: number;
  /** When linearizable: for each partition, its operations in a valid linearization order. */
  readonly linearizations?: readonly (readonly Operation<I, O>[])[];
  /** When not linearizable or unknown: where the search got stuck. */
  readonly explanation?: Explanation<S, I, O>;
}

/**
 * Checks whether `operations` is linearizable with respect to `model`.
 *
 * @throws whatever the model's `step` throws for an operation it cannot take (the bundled models
 * throw `HistoryError`).
 *
 * Never runs past `options.timeoutMs` (by more than a fraction of a millisecond of search, or
 * one growth of the visited table), `options.stepsMax` or `options.visitedBytesMax`: it answers
 * `unknown` instead.
 */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult<S, I, O> {
  const startMs = performance.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const stepsMax = options.stepsMax ?? Infinity;
  if (!(timeoutMs >= 0)) throw new RangeError(`timeoutMs must be >= 0, got ${timeoutMs}`);
  if (!(stepsMax >= 0)) throw new RangeError(`stepsMax must be >= 0, got ${stepsMax}`);
  if (!(options.visitedBytesMax === undefined || options.visitedBytesMax > 0)) {
    throw new RangeError(`visitedBytesMax must be > 0, got ${options.visitedBytesMax}`);
  }
  const visitedBytesMax = options.visitedBytesMax ?? DEFAULT_VISITED_BYTES_MAX;
  const budget: SearchBudget = {
    deadlineMs: startMs + timeoutMs,
    stepsMax,
    visitedBytesMax,
    steps: 0,
  };

  // Step every operation once from the initial state, so that one the model cannot take (an
  // unknown `f`, a malformed argument) is reported now rather than when the search reaches it.
  const initial = model.init();
  for (const op of operations) model.step(initial, op.input, op.output);

  const unconstrained = model.unconstrained;
  const kept = unconstrained === undefined
    ? operations
    : operations.filter((op) => !unconstrained.call(model, op.input, op.output));
  const partitions = model.partition?.(kept) ?? [kept.slice()];
  const partitionSizes = partitions.map((p) => p.length);
  if (partitionSizes.reduce((a, b) => a + b, 0) !== kept.length) {
    throw new Error("invariant: the model's partition lost or duplicated operations");
  }

  const linearizations: Operation<I, O>[][] = [];
  const finish = (rest: Partial<CheckResult<S, I, O>> & { verdict: Verdict }) => ({
    partitionSizes,
    droppedOperations: operations.length - kept.length,
    steps: budget.steps,
    elapsedMs: performance.now() - startMs,
    ...rest,
  });
  // Small partitions first: a violation in one of them ends the check early. A partition that
  // runs out of budget does not: a later one may still prove a violation, which is a verdict.
  const byLength = partitions.map((_, i) => i).sort((a, b) =>
    partitionSizes[a] - partitionSizes[b] || a - b
  );
  let unfinished: Partial<CheckResult<S, I, O>> | undefined;
  for (const index of byLength) {
    const outcome = searchLinearization(model, partitions[index], budget);
    if (outcome.kind === "linearizable") {
      linearizations[index] = outcome.linearization;
      continue;
    }
    const explained = {
      unknownReason: outcome.unknownReason,
      explanation: {
        partition: index,
        prefix: outcome.prefix,
        stateAfterPrefix: outcome.stateAfterPrefix,
        unplaceable: outcome.unplaceable,
      },
    };
    if (outcome.kind === "not-linearizable") return finish({ verdict: outcome.kind, ...explained });
    unfinished ??= explained;
  }
  if (unfinished !== undefined) return finish({ verdict: "unknown", ...unfinished });
  return finish({ verdict: "linearizable", linearizations });
}

/**
 * Checks a history of events (see {@link HistoryEvent}) against a model over invocations and
 * completions, such as the register and key-value models.
 *
 * @throws {HistoryError} when the events do not pair into operations.
 */
export function checkEvents<S>(
  model: Model<S, Invocation, Completion>,
  events: readonly HistoryEvent[],
  options: CheckOptions = {},
): CheckResult<S, Invocation, Completion> {
  return checkOperations(model, eventsToOperations(events), options);
}
