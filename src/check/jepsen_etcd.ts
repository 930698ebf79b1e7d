/**
 * Parser for Jepsen's etcd register logs, one event a line:
 *
 * ```
 * INFO  jepsen.util - 3	:invoke	:cas	[4 0]
 * INFO  jepsen.util - 3	:fail	:cas	[4 0]
 * ```
 *
 * Values are `nil` (no value: `null`), integers, `[from to]` vectors, or `:timed-out`. A
 * completion whose value is `:timed-out` has an unknown outcome, whatever its type (`:info
 * :write :timed-out`, `:fail :read :timed-out`). Lines that are not client events (nemesis,
 * other loggers) are ignored. Events carry no time: their order in the file is their order.
 *
 * @module
 */

import { type EventType, HistoryError, type HistoryEvent } from "./history.ts";

const EVENT_LINE = /^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+:([\w-]+)\s+(.*)$/;

/** A Jepsen keyword value such as `:timed-out`. */
const TIMED_OUT = ":timed-out";

/**
 * Parses a Jepsen etcd log into history events for the register model.
 *
 * @throws {HistoryError} naming the line when a client event's value cannot be read.
 */
export function parseJepsenEtcdLog(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const match = EVENT_LINE.exec(lines[i].trimEnd());
    if (match === null) continue;
    const [, process, type, f, rawValue] = match;
    let value: unknown;
    try {
      value = parseValue(rawValue.trim());
    } catch (error) {
      throw new HistoryError(
        `Cannot parse line ${i + 1}: ${(error as Error).message}: ${JSON.stringify(lines[i])}`,
      );
    }
    const unknown = type !== "invoke" && value === TIMED_OUT;
    events.push({
      process: Number(process),
      type: unknown ? "info" : type as EventType,
      f,
      value: unknown ? undefined : value,
    });
  }
  return events;
}

/** Parses an EDN value of the kinds the etcd logs hold: nil, integers, keywords, vectors. */
function parseValue(text: string): unknown {
  if (text === "nil") return null;
  if (/^-?\d+$/.test(text)) {
    const value = Number(text);
    if (!Number.isSafeInteger(value)) throw new Error(`integer ${text} is out of range`);
    return value;
  }
  if (/^:[\w-]+$/.test(text)) return text;
  if (text.startsWith("[") && text.endsWith("]")) {
    const inner = text.slice(1, -1).trim();
    if (inner.includes("[")) throw new Error("nested vectors are not supported");
    return inner === "" ? [] : inner.split(/[\s,]+/).map(parseValue);
  }
  throw new Error(`unsupported value ${JSON.stringify(text)}`);
}
