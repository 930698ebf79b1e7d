/**
 * Proves the fault suite bites: copies the tree to a temporary directory, breaks one line there,
 * runs a schedule against the copy and expects the checks to report the anomaly. The product code
 * has no switch for this: the broken build exists only in the copy.
 *
 * `deno run -A tests/fault/bites.ts [--seed S] [--duration-ms MS] [--only NAME]`
 *
 * Exit status 0 when every broken build was caught, 1 when one slipped through.
 */
import { parseArgs } from "node:util";
import type { ScheduleKind } from "./nemesis.ts";
import { namespacesWork } from "./net.ts";
import { formatReport, runSchedule } from "./schedule.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const COPY = ["main.ts", "mod.ts", "deno.json", "deno.lock", "cmd", "src", "raft"];

/** One deliberately broken build: a single line replaced in a copy of the tree. */
export interface Bite {
  name: string;
  why: string;
  file: string;
  from: string;
  to: string;
  kind: ScheduleKind;
  /** Checks expected to fail (any one of them failing is enough). */
  expect: string[];
}

export const BITES: Bite[] = [
  {
    name: "no-read-index",
    why: "reads skip the ReadIndex barrier: a partitioned member serves its stale cookie",
    file: "src/executive/raft_deps.ts",
    from: `readBarrier: () => mapped("read consistently", () => node.readIndex()),`,
    to: `readBarrier: () => Promise.resolve(),`,
    kind: "partition-leader",
    expect: ["linearizable (register + cas per key)"],
  },
  {
    name: "commit-without-quorum",
    why: "the leader counts an entry committed once it alone has it: acknowledged before a " +
      "majority holds it",
    file: "raft/quorum.ts",
    from: "return indexes[Math.floor(indexes.length / 2)];",
    to: "return indexes[0];",
    kind: "partition-leader",
    expect: [
      "linearizable (register + cas per key)",
      "no acknowledged write lost",
      "SoRs and reflector LDBs equal (checksums)",
      "every member and reflector reaches the last seq",
    ],
  },
];

/** Copies the tree and applies `bite`; returns the copy's main.ts. */
export async function brokenCopy(bite: Bite): Promise<{ dir: string; main: string }> {
  const dir = await Deno.makeTempDir({ prefix: `ctl-bite-${bite.name}-` });
  for (const item of COPY) {
    const res = await new Deno.Command("cp", { args: ["-r", `${ROOT}${item}`, `${dir}/`] })
      .output();
    if (!res.success) throw new Error(`Cannot copy ${item} to ${dir}`);
  }
  const path = `${dir}/${bite.file}`;
  const text = await Deno.readTextFile(path);
  const count = text.split(bite.from).length - 1;
  if (count !== 1) {
    throw new Error(
      `Cannot apply bite "${bite.name}": ${bite.file} has ${count} copies of the line`,
    );
  }
  await Deno.writeTextFile(path, text.replace(bite.from, bite.to));
  return { dir, main: `${dir}/main.ts` };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seed: { type: "string", default: "4242" },
      "duration-ms": { type: "string", default: "15000" },
      only: { type: "string" },
    },
  });
  if (!(await namespacesWork())) {
    console.error("Error: cannot create network namespaces: run as root on Linux");
    Deno.exit(2);
  }
  let slipped = 0;
  for (const bite of BITES.filter((b) => !values.only || b.name === values.only)) {
    const { dir, main } = await brokenCopy(bite);
    console.log(`\n=== bite ${bite.name}: ${bite.why}`);
    console.log(`    ${bite.file}: "${bite.from}" -> "${bite.to}"`);
    const report = await runSchedule({
      seed: Number(values.seed),
      kind: bite.kind,
      size: 3,
      durationMs: Number(values["duration-ms"]),
      main,
      log: (line) => console.error(`  [${bite.name}] ${line}`),
    });
    console.log(formatReport(report));
    const failed = report.checks.filter((c) => !c.ok).map((c) => c.name);
    const caught = failed.some((name) => bite.expect.includes(name));
    console.log(
      caught
        ? `=> CAUGHT: ${failed.join("; ")}`
        : `=> SLIPPED THROUGH (failed: ${failed.join("; ") || "nothing"}${
          report.error ? `; error: ${report.error}` : ""
        })`,
    );
    if (!caught) slipped++;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  Deno.exit(slipped === 0 ? 0 : 1);
}
