/**
 * The `ctl` program: global flags, then one subcommand per component or admin task.
 * Each subcommand lives in its own file in cmd/ and is listed in COMMANDS.
 */
import { Command, Option } from "commander";
import denoJson from "../deno.json" with { type: "json" };
import { LOG_LEVELS, type LogFormat, setupLogging } from "../src/util/log.ts";
import { clusterCommand } from "./admin_cluster.ts";
import { familyCommand } from "./admin_family.ts";
import { limitsCommand } from "./admin_limits.ts";
import { mutateCommand } from "./admin_mutate.ts";
import { schemaCommand } from "./admin_schema.ts";
import { tableCommand } from "./admin_table.ts";
import { writerCommand } from "./admin_writer.ts";
import { checkCommand } from "./check.ts";
import { heartbeatCommand } from "./heartbeat.ts";
import { bootstrapCommand, supervisorCommand } from "./supervisor.ts";
import { upCommand } from "./up.ts";
import { executiveCommand } from "./executive.ts";
import { getCommand } from "./get.ts";
import { queryCommand } from "./query.ts";
import { reflectorCommand } from "./reflector.ts";
import { sidecarCommand } from "./sidecar.ts";
import { buildCommand, type CommandSpec, envName, prepareProgram, runProgram } from "./cli.ts";

/** Every subcommand, in the order `ctl --help` lists them. */
export const COMMANDS: CommandSpec[] = [
  upCommand,
  executiveCommand,
  reflectorCommand,
  sidecarCommand,
  heartbeatCommand,
  supervisorCommand,
  bootstrapCommand,
  queryCommand,
  getCommand,
  familyCommand,
  tableCommand,
  schemaCommand,
  writerCommand,
  mutateCommand,
  limitsCommand,
  clusterCommand,
  checkCommand,
];

export const VERSION: string = denoJson.version;

/** Builds the whole command tree (exported for tests that inspect flags and help). */
export function buildProgram(): Command {
  const program = new Command("ctl")
    .description(
      "ctl: a control-data store. Executives replicate the system of record with Raft;\n" +
        "reflectors follow its ledger into a local SQLite file (the LDB) that apps read locally.\n\n" +
        "Every flag can also be set by an environment variable CTL_<FLAG_NAME>\n" +
        "(e.g. --log-level → CTL_LOG_LEVEL). Precedence: flag > environment > default.",
    )
    .version(VERSION, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .addOption(
      new Option("--log-level <LEVEL>", "lowest level to log").choices(LOG_LEVELS).default("info")
        .env(envName("log-level")),
    )
    .addOption(
      new Option("--log-format <FORMAT>", "text on a terminal, JSON lines otherwise (auto)")
        .choices(["auto", "text", "json"]).default("auto").env(envName("log-format")),
    )
    .showSuggestionAfterError(true)
    .hook("preAction", async (_root, action) => {
      const opts = action.optsWithGlobals();
      await setupLogging(opts.logLevel, opts.logFormat as LogFormat);
    });
  for (const spec of COMMANDS) program.addCommand(buildCommand(spec));
  return prepareProgram(program);
}

/** Runs `ctl` with the given arguments; returns the exit code. */
export function main(argv: string[]): Promise<number> {
  return runProgram(buildProgram(), argv);
}
