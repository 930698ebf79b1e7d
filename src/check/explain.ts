/**
 * Renders a check result for people: the verdict, and for a history that is not linearizable,
 * the end of the longest linearizable prefix and the operations that cannot follow it.
 *
 * @module
 */

import type { CheckResult } from "./checker.ts";
import type { Operation } from "./history.ts";
import type { Model } from "./model.ts";

/** How much of an explanation to print. */
export interface FormatOptions {
  /** Operations of the prefix shown, from its end; default 10. */
  readonly prefixOpsMax?: number;
}

/** A multi-line, human-readable account of `result`. */
export function formatCheckResult<S, I, O>(
  result: CheckResult<S, I, O>,
  model: Model<S, I, O>,
  options: FormatOptions = {},
): string {
  const prefixOpsMax = options.prefixOpsMax ?? 10;
  const operations = result.partitionSizes.reduce((a, b) => a + b, 0);
  const partitions = result.partitionSizes.length;
  const cost = `${result.steps} steps, ${result.elapsedMs.toFixed(1)} ms`;
  const scope = `${operations} operations in ${partitions} partition${partitions === 1 ? "" : "s"}`;
  const dropped = result.droppedOperations > 0
    ? `, ${result.droppedOperations} unconstrained operations dropped`
    : "";
  const lines: string[] = [];
  if (result.verdict === "linearizable") {
    lines.push(`linearizable (${scope}${dropped}; ${cost})`);
    return lines.join("\n");
  }
  if (result.verdict === "unknown") {
    const why = result.unknownReason === "steps"
      ? "step limit reached"
      : result.unknownReason === "memory"
      ? "memory limit reached"
      : "timed out";
    lines.push(`unknown: ${why} before a verdict (${scope}${dropped}; ${cost})`);
  } else {
    lines.push(`not linearizable (${scope}${dropped}; ${cost})`);
  }
  const explanation = result.explanation;
  if (explanation === undefined) return lines.join("\n");

  const describeState = model.describeState ?? ((state: S) => JSON.stringify(state));
  const size = result.partitionSizes[explanation.partition];
  const where = partitions === 1 ? "" : ` of partition ${explanation.partition} (${size} ops)`;
  const prefix = explanation.prefix;
  const state = describeState(explanation.stateAfterPrefix);
  lines.push(
    `longest linearizable prefix found${where}: ${prefix.length} operations, ending in ` +
      `state ${state}`,
  );
  const shownFrom = Math.max(0, prefix.length - prefixOpsMax);
  if (shownFrom > 0) lines.push(`  … ${shownFrom} earlier operations`);
  for (const op of prefix.slice(shownFrom)) lines.push(`  ${formatOperation(op, model)}`);
  if (result.verdict === "not-linearizable") {
    lines.push(`none of these can come next; the model rejects each in state ${state}:`);
    for (const op of explanation.unplaceable) lines.push(`  ${formatOperation(op, model)}`);
  }
  return lines.join("\n");
}

/** One operation on one line: `#12 process 3 write(3) [14, 17]`. */
export function formatOperation<I, O>(op: Operation<I, O>, model: Model<unknown, I, O>): string {
  const what = model.describeOperation?.(op.input, op.output) ??
    `${JSON.stringify(op.input)} -> ${JSON.stringify(op.output) ?? "?"}`;
  const end = op.returnTime === Infinity ? "∞)" : `${op.returnTime}]`;
  return `#${op.id} process ${String(op.process)} ${what} [${op.callTime}, ${end}`;
}
