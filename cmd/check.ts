/** `ctl check FILE`: checks a recorded client history for linearizability. */
import { runCheckCli } from "../src/check/cli.ts";
import type { CommandSpec } from "./cli.ts";

export const checkCommand: CommandSpec = {
  name: "check",
  summary: "check a client history (ctl JSON lines or a Jepsen log) for linearizability",
  description: "Checks a client history for linearizability against the register or key-value " +
    "model.\nExit status: 0 linearizable, 1 not linearizable, 2 unknown (a limit was hit), " +
    "64 usage error, 65 unreadable history.",
  args: ["<file>"],
  flags: [
    {
      name: "format",
      type: "string",
      help: "history format",
      choices: ["auto", "jsonl", "jepsen"],
      default: "auto",
    },
    {
      name: "model",
      type: "string",
      help: "model to check against",
      choices: ["auto", "register", "kv"],
      default: "auto",
    },
    { name: "timeout-ms", type: "int", help: "give up with verdict unknown after this long" },
    { name: "memory-mb", type: "int", help: "give up when the search needs more memory" },
    { name: "json", type: "bool", help: "print the result as one JSON object" },
  ],
  run: (opts, args) => {
    const argv = ["--format", String(opts.format), "--model", String(opts.model)];
    if (opts.timeoutMs !== undefined) argv.push("--timeout-ms", String(opts.timeoutMs));
    if (opts.memoryMb !== undefined) argv.push("--memory-mb", String(opts.memoryMb));
    if (opts.json) argv.push("--json");
    argv.push(String(args[0]));
    return runCheckCli(argv);
  },
};
