/**
 * Records a client history while a test runs, for the checker: each client calls `invoke`
 * before sending a request and completes the returned handle when the answer (or a timeout)
 * arrives.
 *
 * @module
 */

import type { HistoryEvent } from "./history.ts";
import { formatJsonLinesHistory } from "./jsonl.ts";

/** The completion side of one recorded invocation; exactly one method may be called, once. */
export interface PendingOperation {
  /** The operation took effect; `value` is its result (the value read, for a read). */
  ok(value?: unknown): void;
  /** The operation definitely did not take effect, or (for `cas`) ran and saw another value. */
  fail(value?: unknown): void;
  /** The outcome is unknown (timeout, lost connection): it may take effect later or never. */
  info(): void;
}

/** Records events with monotonic timestamps from a clock (default `performance.now()`). */
export class HistoryRecorder {
  readonly #events: HistoryEvent[] = [];
  readonly #pending = new Set<string | number>();
  readonly #nowMs: () => number;

  constructor(nowMs: () => number = () => performance.now()) {
    this.#nowMs = nowMs;
  }

  /** The events recorded so far, in order. */
  get events(): readonly HistoryEvent[] {
    return this.#events;
  }

  /**
   * Records the start of operation `f` by `process`.
   *
   * @throws {Error} when `process` already has an operation in flight: a process is sequential.
   */
  invoke(process: string | number, f: string, value?: unknown, key?: string): PendingOperation {
    if (this.#pending.has(process)) {
      throw new Error(`Cannot invoke "${f}": process ${String(process)} has one in flight`);
    }
    this.#pending.add(process);
    this.#push({ process, type: "invoke", f, key, value });
    let done = false;
    const complete = (type: "ok" | "fail" | "info", result?: unknown) => {
      if (done) throw new Error(`Operation "${f}" of process ${String(process)} completed twice`);
      done = true;
      this.#pending.delete(process);
      this.#push({ process, type, f, key, value: result });
    };
    return {
      ok: (result) => complete("ok", result),
      fail: (result) => complete("fail", result),
      info: () => complete("info"),
    };
  }

  /** The history as JSON lines. */
  toJsonLines(): string {
    return formatJsonLinesHistory(this.#events);
  }

  #push(event: Omit<HistoryEvent, "time">): void {
    const time = this.#nowMs();
    const last = this.#events.at(-1)?.time ?? -Infinity;
    // Ties are fine (the checker treats them as concurrent); going back in time is not.
    if (!(time >= last)) throw new Error(`Clock went backwards: ${time} after ${last}`);
    const { process, type, f, key, value } = event;
    this.#events.push({
      process,
      type,
      f,
      ...(key === undefined ? {} : { key }),
      ...(value === undefined ? {} : { value }),
      time,
    });
  }
}
