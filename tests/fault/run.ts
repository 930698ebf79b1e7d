/**
 * Long fault schedules: `deno run -A tests/fault/run.ts --schedules 50 --seed 1`.
 *
 * Schedule i runs with seed S+i; its fault kind and cluster size are drawn from the seed unless
 * `--kind`/`--size` fix them. Each writes `OUT/schedule-<seed>.json` (the full report),
 * `.txt` (readable) and `.history.jsonl` (the history, for `ctl check`); the run ends with
 * `OUT/summary.json` and `OUT/summary.txt` (default OUT: `.ctl/fault-reports`, ignored by git). Exit status 1 when any schedule found an anomaly or
 * failed to run. Needs root (network namespaces, iptables, tmpfs).
 */
import { parseArgs } from "node:util";
import { FAULT_KINDS, type ScheduleKind } from "./nemesis.ts";
import { cleanupStale, namespacesWork } from "./net.ts";
import {
  formatReport,
  runSchedule,
  scheduleFromSeed,
  type ScheduleOptions,
  type ScheduleReport,
} from "./schedule.ts";

const USAGE = `Usage: deno run -A tests/fault/run.ts [--schedules N] [--seed S] [--kind KIND]
  [--size 3|5] [--duration-ms MS] [--out DIR] [--main PATH/main.ts] [--keep-data]
       deno run -A tests/fault/run.ts --cleanup   (after an interrupted run: namespaces, mounts)
kinds: ${[...FAULT_KINDS, "mixed", "none"].join(", ")}`;

/** A summary over reports. */
export function summarize(reports: ScheduleReport[]): string {
  const anomalies = reports.filter((r) => !r.ok);
  const worst = reports.reduce(
    (w, r) => (r.longestNoWriteMs > w.longestNoWriteMs ? r : w),
    reports[0],
  );
  const byKind = new Map<string, { n: number; bad: number; worstMs: number }>();
  for (const r of reports) {
    const k = byKind.get(`${r.kind}/${r.size}`) ?? { n: 0, bad: 0, worstMs: 0 };
    k.n++;
    if (!r.ok) k.bad++;
    k.worstMs = Math.max(k.worstMs, r.longestNoWriteMs);
    byKind.set(`${r.kind}/${r.size}`, k);
  }
  const lines = [
    `fault schedules: ${reports.length}, anomalies: ${anomalies.length}, operations: ${
      reports.reduce((a, r) => a + r.ops.total, 0)
    }`,
    `longest window without a successful write: ${
      worst?.longestNoWriteMs ?? 0
    } ms (seed ${worst?.seed}, ${worst?.kind}/${worst?.size})`,
    `snapshots installed by members: ${
      reports.reduce((a, r) => a + (r.snapshots?.installed ?? 0), 0)
    }, read back from disk to send: ${
      reports.reduce((a, r) => a + (r.snapshots?.readBack ?? 0), 0)
    }`,
    "kind/executives  schedules  anomalies  longest-no-write-ms",
    ...[...byKind].sort().map(([k, v]) =>
      `${k.padEnd(24)} ${String(v.n).padStart(3)} ${String(v.bad).padStart(10)} ${
        String(v.worstMs).padStart(20)
      }`
    ),
  ];
  for (const r of anomalies) {
    const failed = r.checks.filter((c) => !c.ok).map((c) => c.name);
    lines.push(
      `${r.checks.some((c) => !c.ok) ? "ANOMALY" : "ERROR"} seed=${r.seed} ${r.kind}/${r.size}: ${
        r.error ?? ""
      }${failed.join("; ")} (${r.dataDir ?? ""})`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      schedules: { type: "string", default: "1" },
      seed: { type: "string", default: String(Date.now() % 100_000) },
      kind: { type: "string" },
      size: { type: "string" },
      "duration-ms": { type: "string", default: "20000" },
      out: { type: "string", default: ".ctl/fault-reports" },
      main: { type: "string" },
      "keep-data": { type: "boolean", default: false },
      cleanup: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (values.cleanup) {
    const removed = await cleanupStale();
    console.log(`removed: ${removed.join(" ") || "nothing"}`);
    Deno.exit(0);
  }
  const kind = values.kind as ScheduleKind | undefined;
  if (kind && ![...FAULT_KINDS, "mixed", "none"].includes(kind)) {
    console.error(`Error: unknown --kind "${kind}"\nTry: ${USAGE}`);
    Deno.exit(2);
  }
  const size = values.size ? Number(values.size) : undefined;
  if (size !== undefined && size !== 3 && size !== 5) {
    console.error(`Error: --size must be 3 or 5, not "${values.size}"`);
    Deno.exit(2);
  }
  if (!(await namespacesWork())) {
    console.error("Error: cannot create network namespaces: run as root on Linux");
    Deno.exit(2);
  }
  const n = Number(values.schedules);
  const seed0 = Number(values.seed);
  const out = values.out!;
  await Deno.mkdir(out, { recursive: true });
  const reports: ScheduleReport[] = [];
  for (let i = 0; i < n; i++) {
    const seed = seed0 + i;
    const over: Partial<ScheduleOptions> = {
      durationMs: Number(values["duration-ms"]),
      keepData: values["keep-data"],
      historyFile: `${out}/schedule-${seed}.history.jsonl`,
      log: (line) => console.error(`  [${seed}] ${line}`),
      ...(kind ? { kind } : {}),
      ...(size ? { size } : {}),
      ...(values.main ? { main: values.main } : {}),
    };
    const options = scheduleFromSeed(seed, over);
    console.error(
      `schedule ${i + 1}/${n}: seed ${seed}, ${options.kind}, ${options.size} executives`,
    );
    const report = await runSchedule(options);
    reports.push(report);
    await Deno.writeTextFile(`${out}/schedule-${seed}.json`, JSON.stringify(report, null, 2));
    const text = formatReport(report);
    await Deno.writeTextFile(`${out}/schedule-${seed}.txt`, text + "\n");
    console.log(text);
    await Deno.writeTextFile(`${out}/summary.json`, JSON.stringify(reports, null, 2));
    await Deno.writeTextFile(`${out}/summary.txt`, summarize(reports) + "\n");
  }
  console.log("\n" + summarize(reports));
  Deno.exit(reports.every((r) => r.ok) ? 0 : 1);
}
