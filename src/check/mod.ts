/**
 * The linearizability checker: models, history formats, the checker and its explanations.
 *
 * ```ts
 * const recorder = new HistoryRecorder();
 * const op = recorder.invoke(1, "write", 3, "flags/a");
 * op.ok();
 * const result = checkEvents(kvModel, recorder.events, { timeoutMs: 5_000 });
 * if (result.verdict !== "linearizable") console.log(formatCheckResult(result, kvModel));
 * ```
 *
 * @module
 */

export {
  checkEvents,
  checkOperations,
  type CheckOptions,
  type CheckResult,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_VISITED_BYTES_MAX,
  type Explanation,
  type Verdict,
} from "./checker.ts";
export { formatCheckResult, formatOperation, type FormatOptions } from "./explain.ts";
export {
  type Completion,
  eventsToOperations,
  type EventType,
  HistoryError,
  type HistoryEvent,
  type HistoryOperation,
  type Invocation,
  type Operation,
  type Scalar,
  UNKNOWN,
  type Unknown,
} from "./history.ts";
export { parseJepsenEtcdLog } from "./jepsen_etcd.ts";
export { formatJsonLinesHistory, parseJsonLinesHistory } from "./jsonl.ts";
export { kvModel, type KvState } from "./kv_model.ts";
export { hashString, mix32, type Model } from "./model.ts";
export { HistoryRecorder, type PendingOperation } from "./recorder.ts";
export { registerModel } from "./register_model.ts";
export { runCheckCli } from "./cli.ts";
export type { UnknownReason } from "./search.ts";
