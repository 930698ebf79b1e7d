/**
 * Logging set-up for every `ctl` process: readable lines on a terminal, JSON lines otherwise.
 *
 * Modules log through `getLogger(["ctl", component, ...])`; only the program entry point calls
 * `setupLogging`, so library users keep control of their own sinks.
 */
import {
  configure,
  getJsonLinesFormatter,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";

const encoder = new TextEncoder();

export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;

export type LogFormat = "auto" | "text" | "json";

/** Configures the process-wide sinks. `auto` picks text on a terminal (stderr), JSON lines otherwise. */
export async function setupLogging(level: LogLevel, format: LogFormat = "auto"): Promise<void> {
  const useText = format === "text" || (format === "auto" && Deno.stderr.isTerminal());
  const formatter = useText
    ? getTextFormatter({ timestamp: "time", value: (v) => Deno.inspect(v, { colors: false }) })
    : getJsonLinesFormatter();
  await configure({
    reset: true,
    sinks: {
      // stderr keeps stdout clean for command output (query results, JSON); written
      // synchronously so the last lines before a crash or exit are not lost.
      stderr: (record: LogRecord) => {
        Deno.stderr.writeSync(encoder.encode(formatter(record)));
      },
    },
    loggers: [
      { category: ["ctl"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** The logger for a component, e.g. `log("executive")`. */
export function log(...category: string[]): Logger {
  return getLogger(["ctl", ...category]);
}
