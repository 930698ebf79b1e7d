/**
 * Command-line checker: `deno run --allow-read src/check/cli.ts [options] FILE`.
 *
 * Reads a history (ctl's JSON lines, or a Jepsen etcd log), checks it against the register or
 * key-value model, and prints the verdict, with an explanation when it is not linearizable.
 * Exit status: 0 linearizable, 1 not linearizable, 2 unknown (time or step limit), 64 usage
 * error, 65 unreadable history.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  checkEvents,
  type CheckResult,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_VISITED_BYTES_MAX,
} from "./checker.ts";
import { formatCheckResult, formatOperation } from "./explain.ts";
import { type Completion, HistoryError, type HistoryEvent, type Invocation } from "./history.ts";
import { parseJepsenEtcdLog } from "./jepsen_etcd.ts";
import { parseJsonLinesHistory } from "./jsonl.ts";
import { kvModel } from "./kv_model.ts";
import type { Model } from "./model.ts";
import { registerModel } from "./register_model.ts";

/** Exit statuses of the checker CLI. */
export const EXIT = {
  linearizable: 0,
  notLinearizable: 1,
  unknown: 2,
  usage: 64,
  badHistory: 65,
} as const;

const USAGE = `Usage: check [options] FILE

Checks a client history for linearizability.

Options:
  --format F      jsonl | jepsen | auto (default auto: JSON lines if the file starts with "{")
  --model M       register | kv | auto (default auto: kv when events carry a "key")
  --timeout-ms N  give up with verdict "unknown" after N ms (default ${DEFAULT_TIMEOUT_MS})
  --steps-max N   give up with verdict "unknown" after N search steps (default none)
  --memory-mb N   give up with verdict "unknown" when visited configurations need more than
                  N MiB (default ${DEFAULT_VISITED_BYTES_MAX / 2 ** 20})
  --json          print the result as one JSON object
  -h, --help      print this help

Exit status: 0 linearizable, 1 not linearizable, 2 unknown, 64 usage error, 65 bad history.`;

/** Where the CLI writes; the real process's streams by default. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readTextFile(path: string): Promise<string>;
}

const processIo: CliIo = {
  stdout: (text) => console.log(text),
  stderr: (text) => console.error(text),
  readTextFile: (path) => Deno.readTextFile(path),
};

class UsageError extends Error {
  constructor(message: string, readonly hint: string) {
    super(message);
  }
}

/** Runs the checker CLI on `args`; resolves to the exit status. */
export async function runCheckCli(args: readonly string[], io: CliIo = processIo): Promise<number> {
  try {
    return await run(args, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`Error: ${error.message}\nTry: ${error.hint}`);
      return EXIT.usage;
    }
    if (error instanceof HistoryError) {
      io.stderr(`Error: ${error.message}`);
      return EXIT.badHistory;
    }
    throw error;
  }
}

async function run(args: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        format: { type: "string", default: "auto" },
        model: { type: "string", default: "auto" },
        "timeout-ms": { type: "string", default: String(DEFAULT_TIMEOUT_MS) },
        "steps-max": { type: "string" },
        "memory-mb": { type: "string", default: String(DEFAULT_VISITED_BYTES_MAX / 2 ** 20) },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message, "check --help");
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(USAGE);
    return EXIT.linearizable;
  }
  if (positionals.length !== 1) {
    throw new UsageError(
      `expected one history file, got ${positionals.length}`,
      "check history.jsonl",
    );
  }
  const [file] = positionals;
  if (!["auto", "jsonl", "jepsen"].includes(values.format)) {
    throw new UsageError(`unknown --format ${JSON.stringify(values.format)}`, "--format jsonl");
  }
  if (!["auto", "register", "kv"].includes(values.model)) {
    throw new UsageError(`unknown --model ${JSON.stringify(values.model)}`, "--model register");
  }
  const timeoutMs = nonNegative("--timeout-ms", values["timeout-ms"]);
  const stepsMax = values["steps-max"] === undefined
    ? undefined
    : nonNegative("--steps-max", values["steps-max"]);
  const visitedBytesMax = nonNegative("--memory-mb", values["memory-mb"]) * 2 ** 20;
  if (visitedBytesMax === 0) throw new UsageError("--memory-mb must be > 0", "--memory-mb 512");

  let text: string;
  try {
    text = await io.readTextFile(file);
  } catch (error) {
    throw new UsageError(`Cannot read ${file}: ${(error as Error).message}`, "check FILE");
  }
  const format = chooseFormat(values.format, text);
  const events = format === "jsonl" ? parseJsonLinesHistory(text) : parseJepsenEtcdLog(text);
  const modelName = chooseModel(values.model, events);
  const options = { timeoutMs, stepsMax, visitedBytesMax };
  const report = modelName === "kv"
    ? render(kvModel, checkEvents(kvModel, events, options))
    : render(registerModel, checkEvents(registerModel, events, options));

  if (values.json) {
    io.stdout(JSON.stringify({ file, format, model: modelName, ...report.json }));
  } else {
    io.stdout(`${file} (${format}, ${modelName} model): ${report.text}`);
  }
  return report.verdict === "linearizable"
    ? EXIT.linearizable
    : report.verdict === "not-linearizable"
    ? EXIT.notLinearizable
    : EXIT.unknown;
}

function render<S>(
  model: Model<S, Invocation, Completion>,
  result: CheckResult<S, Invocation, Completion>,
) {
  const explanation = result.explanation;
  const describeState = model.describeState ?? ((state: S) => JSON.stringify(state));
  return {
    verdict: result.verdict,
    text: formatCheckResult(result, model),
    json: {
      verdict: result.verdict,
      unknownReason: result.unknownReason,
      partitionSizes: result.partitionSizes,
      droppedOperations: result.droppedOperations,
      steps: result.steps,
      elapsedMs: Math.round(result.elapsedMs * 10) / 10,
      explanation: explanation === undefined ? undefined : {
        partition: explanation.partition,
        prefixLength: explanation.prefix.length,
        stateAfterPrefix: describeState(explanation.stateAfterPrefix),
        prefixTail: explanation.prefix.slice(-10).map((op) => formatOperation(op, model)),
        unplaceable: explanation.unplaceable.map((op) => formatOperation(op, model)),
      },
    },
  };
}

function nonNegative(flag: string, text: string): number {
  const value = Number(text);
  if (!(Number.isFinite(value) && value >= 0)) {
    throw new UsageError(
      `${flag} must be a number >= 0, got ${JSON.stringify(text)}`,
      `${flag} 1000`,
    );
  }
  return value;
}

function chooseFormat(format: string, text: string): "jsonl" | "jepsen" {
  if (format === "jsonl" || format === "jepsen") return format;
  const first = text.trimStart();
  if (first.startsWith("{") || first === "") return "jsonl";
  if (/^INFO\s+jepsen\.util/m.test(text)) return "jepsen";
  throw new UsageError(
    "cannot tell the history's format: it is neither JSON lines nor a Jepsen log",
    "--format jsonl or --format jepsen",
  );
}

function chooseModel(model: string, events: readonly HistoryEvent[]): "register" | "kv" {
  const keyed = events.some((event) => event.key !== undefined);
  if (model === "auto") return keyed ? "kv" : "register";
  if (model === "kv") return "kv";
  if (keyed) {
    throw new UsageError(
      `events carry a "key" but --model register checks a single register`,
      "--model kv",
    );
  }
  return "register";
}

if (import.meta.main) Deno.exit(await runCheckCli(Deno.args));
