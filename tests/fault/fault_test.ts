/**
 * The short fault suite that `make test` runs: one schedule per fault kind, a few seconds of
 * nemesis each, against real executives in network namespaces, with the history checked for
 * linearizability and the ledger, SoRs and LDBs checked for loss, duplicates, gaps and drift.
 * Then one deliberately broken copy of the tree, to show the checks catch what they claim to.
 *
 * Needs root (namespaces, iptables, tmpfs); skipped elsewhere. `CTL_FAULT_SEED` changes the
 * seeds; long runs: `deno run -A tests/fault/run.ts --schedules 50`.
 */
import assert from "node:assert/strict";
import { BITES, brokenCopy } from "./bites.ts";
import type { ScheduleKind } from "./nemesis.ts";
import { ensurePackages, namespacesWork } from "./net.ts";
import { formatReport, runSchedule } from "./schedule.ts";

const SEED = Number(Deno.env.get("CTL_FAULT_SEED") ?? 100);
const canRun = await namespacesWork();
if (canRun) await ensurePackages();

const SHORT: { kind: ScheduleKind; size: number; durationMs: number }[] = [
  { kind: "kill", size: 3, durationMs: 8000 },
  { kind: "pause", size: 3, durationMs: 7000 },
  { kind: "partition-majority", size: 5, durationMs: 8000 },
  { kind: "partition-oneway", size: 3, durationMs: 7000 },
  { kind: "latency", size: 3, durationMs: 6000 },
  { kind: "clock", size: 3, durationMs: 6000 },
  { kind: "disk", size: 3, durationMs: 7000 },
];

for (const [i, s] of SHORT.entries()) {
  Deno.test({
    name: `fault: ${s.kind} with ${s.size} executives (seed ${SEED + i}) stays linearizable`,
    ignore: !canRun,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const report = await runSchedule({ seed: SEED + i, ...s });
      assert.ok(report.ok, formatReport(report));
      assert.ok(report.ops.total > 50, `too few operations to mean anything: ${report.ops.total}`);
      assert.ok(report.nemesis.some((e) => e.action === "inject"), "the nemesis injected nothing");
    },
  });
}

Deno.test({
  name: "fault: a copy of the tree whose reads skip ReadIndex is caught (stale reads)",
  ignore: !canRun,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const bite = BITES.find((b) => b.name === "no-read-index")!;
    const { dir, main } = await brokenCopy(bite);
    try {
      const report = await runSchedule({
        seed: SEED,
        kind: bite.kind,
        size: 3,
        durationMs: 8000,
        main,
      });
      const failed = report.checks.filter((c) => !c.ok).map((c) => c.name);
      assert.ok(
        failed.some((name) => bite.expect.includes(name)),
        `the broken build passed:\n${formatReport(report)}`,
      );
      if (report.dataDir) await Deno.remove(report.dataDir, { recursive: true }).catch(() => {});
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
