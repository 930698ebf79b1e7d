/**
 * The flag table behind every subcommand: each command declares its flags once (name, type,
 * default, help) and the same table drives parsing, `--help`, the `CTL_<FLAG>` environment
 * variables and validation at start-up. Precedence: flag > environment > default.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { parseDurationMs } from "../src/util/duration.ts";

export type FlagType = "string" | "int" | "bool" | "duration" | "list";

/** One flag of one command. */
export interface FlagSpec {
  /** kebab-case, without dashes: `log-level`; read back camel-cased: `logLevel`. */
  name: string;
  type: FlagType;
  help: string;
  default?: string | number | boolean | string[];
  choices?: readonly string[];
  required?: boolean;
  /** Value placeholder in help, e.g. `FILE`. */
  placeholder?: string;
}

/** A subcommand: a leaf with `run`, or a group with `subcommands`. */
export interface CommandSpec {
  name: string;
  summary: string;
  description?: string;
  /** Positional arguments in commander syntax: `<sql>`, `[keys...]`. */
  args?: string[];
  flags?: FlagSpec[];
  subcommands?: CommandSpec[];
  /** Returns the exit code (default 0). */
  run?: (opts: Record<string, unknown>, args: unknown[]) => Promise<number | void>;
}

/** A mistake in how the command was called: printed with a hint, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The environment variable that can set a flag: `log-level` → `CTL_LOG_LEVEL`. */
export function envName(flag: string): string {
  return "CTL_" + flag.toUpperCase().replaceAll("-", "_");
}

function parserFor(spec: FlagSpec): ((value: string, prev: unknown) => unknown) | undefined {
  switch (spec.type) {
    case "int":
      return (v) => {
        if (!/^-?\d+$/.test(v.trim())) {
          throw new InvalidArgumentError(`"${v}" is not an integer.`);
        }
        return Number(v);
      };
    case "duration":
      return (v) => {
        try {
          return parseDurationMs(v);
        } catch (e) {
          throw new InvalidArgumentError((e as Error).message);
        }
      };
    case "list": {
      // A repeated flag adds to the list (`--field a --field b`); the first use replaces the
      // default, which is recognised by identity.
      const fallback = spec.default;
      return (v, prev) => {
        const items = v.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
        return Array.isArray(prev) && prev !== fallback ? [...prev, ...items] : items;
      };
    }
    case "bool":
      return undefined;
    case "string":
      return undefined;
  }
}

function defaultValue(spec: FlagSpec): unknown {
  if (spec.default === undefined) return undefined;
  if (spec.type === "duration" && typeof spec.default === "string") {
    return parseDurationMs(spec.default);
  }
  return spec.default;
}

function defaultDescription(spec: FlagSpec): string | undefined {
  if (spec.default === undefined) return undefined;
  if (Array.isArray(spec.default)) return spec.default.join(",");
  return String(spec.default);
}

function toOption(spec: FlagSpec): Option {
  const placeholder = spec.placeholder ?? spec.type.toUpperCase();
  const flags = spec.type === "bool" ? `--${spec.name}` : `--${spec.name} <${placeholder}>`;
  const option = new Option(flags, spec.help).env(envName(spec.name));
  const parse = parserFor(spec);
  if (parse) option.argParser(parse);
  if (spec.choices) option.choices(spec.choices);
  const value = defaultValue(spec);
  if (value !== undefined) option.default(value, defaultDescription(spec));
  if (spec.required) option.makeOptionMandatory(true);
  if (spec.type === "bool") {
    // An environment variable sets a bool flag only when it says so; "false" or "0" leave it off.
    option.argParser(() => true);
  }
  return option;
}

/** Builds the commander command for a spec (recursively for groups). */
export function buildCommand(spec: CommandSpec): Command {
  const cmd = new Command(spec.name).summary(spec.summary).description(
    spec.description ?? spec.summary,
  );
  cmd.helpOption("-h, --help", "show help for this command");
  for (const arg of spec.args ?? []) cmd.argument(arg);
  for (const flag of spec.flags ?? []) cmd.addOption(toOption(flag));
  for (const sub of spec.subcommands ?? []) cmd.addCommand(buildCommand(sub));
  if (spec.run) {
    const run = spec.run;
    cmd.action(async (...actionArgs: unknown[]) => {
      const self = actionArgs[actionArgs.length - 1] as Command;
      const opts = self.optsWithGlobals();
      for (const flag of spec.flags ?? []) {
        if (flag.type === "bool") {
          const key = camel(flag.name);
          const fromEnv = self.getOptionValueSource(key) === "env";
          if (fromEnv) opts[key] = isTruthy(Deno.env.get(envName(flag.name)) ?? "");
        }
      }
      const positional = actionArgs.slice(0, actionArgs.length - 2);
      const code = await run(opts, positional);
      exitCode = code ?? 0;
    });
  } else if (spec.subcommands?.length) {
    cmd.action(() => {
      cmd.help({ error: true });
    });
  }
  return cmd;
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function isTruthy(v: string): boolean {
  return ["1", "true", "yes", "on"].includes(v.trim().toLowerCase());
}

let exitCode = 0;

/** Configures error handling so usage mistakes exit 2 with a message that names them. */
export function prepareProgram(program: Command): Command {
  const apply = (c: Command) => {
    c.exitOverride();
    c.showHelpAfterError("(run with --help for usage)");
    c.configureOutput({
      writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)),
      writeOut: (s) => Deno.stdout.writeSync(new TextEncoder().encode(s)),
    });
    for (const sub of c.commands) apply(sub);
  };
  apply(program);
  return program;
}

/** Parses and runs; returns the process exit code. */
export async function runProgram(program: Command, argv: string[]): Promise<number> {
  exitCode = 0;
  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === "commander.helpDisplayed" || e.code === "commander.version" ||
        e.code === "commander.help"
      ) {
        return 0;
      }
      // commander has already printed the message naming the bad flag or command.
      return 2;
    }
    if (e instanceof UsageError) {
      console.error(`Error: ${e.message}`);
      console.error(`Try: ctl --help`);
      return 2;
    }
    console.error(`Error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
