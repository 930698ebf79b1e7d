/**
 * ctl's own history format: JSON lines, one {@link HistoryEvent} per line.
 *
 * ```
 * {"process":1,"type":"invoke","f":"write","key":"flags/a","value":3,"time":1200.5}
 * {"process":1,"type":"ok","f":"write","key":"flags/a","value":3,"time":1203.1}
 * {"process":2,"type":"invoke","f":"cas","value":[3,4]}
 * {"process":2,"type":"info","f":"cas"}
 * ```
 *
 * `key` is present for key-value histories; `time` is optional (all or none) and monotonic.
 * Blank lines are skipped.
 *
 * @module
 */

import { type EventType, HistoryError, type HistoryEvent } from "./history.ts";

const EVENT_TYPES: readonly EventType[] = ["invoke", "ok", "fail", "info"];

/**
 * Parses a JSON-lines history.
 *
 * @throws {HistoryError} naming the line and field of the first malformed event.
 */
export function parseJsonLinesHistory(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      throw new HistoryError(`Cannot parse line ${i + 1}: ${(error as Error).message}`);
    }
    events.push(toEvent(parsed, i + 1));
  }
  return events;
}

function toEvent(parsed: unknown, lineNumber: number): HistoryEvent {
  const fail = (problem: string) => new HistoryError(`Cannot read line ${lineNumber}: ${problem}`);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw fail("want a JSON object");
  }
  const record = parsed as Record<string, unknown>;
  const { process, type, f, key, value, time } = record;
  if (typeof process !== "string" && !(typeof process === "number" && Number.isFinite(process))) {
    throw fail(`"process" must be a string or number, got ${JSON.stringify(process)}`);
  }
  if (!EVENT_TYPES.includes(type as EventType)) {
    throw fail(`"type" must be one of ${EVENT_TYPES.join(", ")}, got ${JSON.stringify(type)}`);
  }
  if (typeof f !== "string" || f === "") {
    throw fail(`"f" must be a non-empty string, got ${JSON.stringify(f)}`);
  }
  if (key !== undefined && typeof key !== "string") {
    throw fail(`"key" must be a string when present, got ${JSON.stringify(key)}`);
  }
  if (time !== undefined && !(typeof time === "number" && Number.isFinite(time))) {
    throw fail(`"time" must be a finite number when present, got ${JSON.stringify(time)}`);
  }
  return {
    process,
    type: type as EventType,
    f,
    ...(key === undefined ? {} : { key }),
    ...(value === undefined ? {} : { value }),
    ...(time === undefined ? {} : { time }),
  };
}

/** Renders events as JSON lines, one event per line, readable by {@link parseJsonLinesHistory}. */
export function formatJsonLinesHistory(events: readonly HistoryEvent[]): string {
  return events.map((event) => JSON.stringify(event) + "\n").join("");
}
