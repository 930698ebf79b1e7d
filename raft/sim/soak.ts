/**
 * Soak: many simulator seeds, for on-demand runs (CI runs 2,000 per size in sim_test.ts).
 * Parallelise by giving each process its own seed range.
 *
 *   deno run raft/sim/soak.ts --seeds 100000 [--from 0] [--nodes 3,5,7]
 */

import { describeFailure, simulate } from "./cluster.ts";

function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}

/** Runs the soak; returns the number of failed seeds. */
export function soak(args: string[], print: (line: string) => void): number {
  const seeds = Number(flag(args, "seeds", "100000"));
  const from = Number(flag(args, "from", "0"));
  const sizes = flag(args, "nodes", "3,5,7").split(",").map(Number);
  let failures = 0;
  let runs = 0;
  for (let seed = from; seed < from + seeds; seed++) {
    const nodes = sizes[seed % sizes.length];
    const r = simulate(seed, nodes);
    runs++;
    if (!r.ok) {
      failures++;
      print(describeFailure(r));
    }
    if (runs % 5000 === 0) print(`${runs}/${seeds} seeds, ${failures} failed`);
  }
  print(
    `soak: ${runs - failures}/${runs} seeds passed (seeds ${from}..${
      from + seeds - 1
    }, sizes ${sizes})`,
  );
  return failures;
}

if (import.meta.main) {
  const failures = soak(Deno.args, console.log);
  Deno.exit(failures > 0 ? 1 : 0);
}
