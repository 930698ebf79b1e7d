/**
 * Runs simulator seeds and reports failures with the command that reproduces them.
 *
 *   deno run raft/sim/run.ts --seed 42 --nodes 5 [--verbose]
 *   deno run raft/sim/run.ts --from 0 --count 2000 --nodes 3
 */

import { describeFailure, simulate } from "./cluster.ts";

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Entry point; `args` are the command-line arguments. Returns the number of failed seeds. */
export function main(args: string[], print: (line: string) => void): number {
  const nodes = Number(flag(args, "nodes") ?? 3);
  const verbose = args.includes("--verbose");
  const seed = flag(args, "seed");
  const from = seed !== undefined ? Number(seed) : Number(flag(args, "from") ?? 0);
  const count = seed !== undefined ? 1 : Number(flag(args, "count") ?? 100);
  let failures = 0;
  for (let s = from; s < from + count; s++) {
    const r = simulate(s, nodes, verbose ? { trace: print } : {});
    if (!r.ok) {
      failures++;
      print(describeFailure(r));
    } else if (count === 1) {
      print(JSON.stringify(r));
    }
  }
  print(
    `${count - failures}/${count} seeds passed (${nodes} nodes, seeds ${from}..${
      from + count - 1
    })`,
  );
  return failures;
}

if (import.meta.main) {
  const failures = main(Deno.args, console.log);
  Deno.exit(failures > 0 ? 1 : 0);
}
