/**
 * Write throughput and latency: 1 and 64 closed-loop clients, single-row writes and 100-row
 * batches, against the leader (and one sequential client through a follower, which forwards).
 * Runs alternate between ctl and etcd, and so does which of them goes first, so that both see the
 * same background noise; throughput is the median over runs, latency percentiles are over every
 * sample of every run.
 */
import { type ClientKind, type LoadRun, runLoad } from "./load.ts";
import type { KvSystem } from "./systems.ts";
import { clusterProcesses, CpuMeter, type CpuWindow } from "./proc_cpu.ts";
import { median, quantile, type Result, sorted, type Target } from "./stats.ts";

export interface WriteOptions {
  durationMs: number;
  /** Writes before each run, not counted. */
  warmupMs: number;
  /**
   * Writes to each system before its first run, not counted. A fresh ctl cluster's first 3 s of
   * one writer measured a p50 of 1.99 ms, the next 3 s 1.43, and 1.10–1.26 ms after that
   * (rounds of a scratch script on a 2.1 GHz EPYC VM: V8 compiling the write path, the
   * SoR's WAL growing to its working size); a cold start is not what a store does for most of
   * its life, and both systems get the same warm-up.
   */
  firstWarmupMs?: number;
  runs: number;
  log: (line: string) => void;
  /** How the load generator sends (`load.ts`). */
  client?: ClientKind;
}

interface Config {
  clients: number;
  rows: number;
  via: "leader" | "follower";
  throughputTarget?: Target;
  latencyTarget?: Target;
  /** Also measure the CPU every process (members and load generator) spends per write. */
  cpu?: boolean;
}

const CONFIGS: Config[] = [
  {
    clients: 1,
    rows: 1,
    via: "leader",
    latencyTarget: { kind: "max", value: 1, relativeToEtcd: true, on: "median", text: "≤ etcd" },
  },
  {
    clients: 64,
    rows: 1,
    via: "leader",
    throughputTarget: {
      kind: "min",
      value: 2,
      relativeToEtcd: true,
      on: "median",
      text: "≥ 2× etcd",
    },
    cpu: true,
  },
  { clients: 1, rows: 100, via: "leader" },
  { clients: 64, rows: 100, via: "leader" },
  { clients: 1, rows: 1, via: "follower" },
];

function label(c: Config): string {
  const rows = c.rows === 1 ? "1 row" : `${c.rows}-row batches`;
  const via = c.via === "follower" ? ", via a follower" : "";
  return `${c.clients} client${c.clients > 1 ? "s" : ""}, ${rows}${via}`;
}

/** All runs of one config for one system. */
interface Runs {
  perSecond: number[];
  latencies: number[];
  failed: number;
}

function summarize(runs: LoadRun[]): Runs {
  const latencies: number[] = [];
  for (const r of runs) for (const x of r.latenciesMs) latencies.push(x);
  return {
    perSecond: runs.map((r) => r.perSecond),
    latencies: sorted(latencies),
    failed: runs.reduce((a, r) => a + r.failed, 0),
  };
}

export async function benchWrites(systems: KvSystem[], o: WriteOptions): Promise<Result[]> {
  const results: Result[] = [];
  if ((o.firstWarmupMs ?? 0) > 0) {
    for (const s of systems) {
      const url = await s.leaderUrl();
      // One writer, then many: both paths warm, with the key space written over once or more.
      for (const [clients, share] of [[1, 0.5], [64, 0.5]] as const) {
        const r = await runLoad((poster, w, i) => s.write(poster, url, 1, w * 7919 + i), {
          concurrency: clients,
          durationMs: o.firstWarmupMs! * share,
          client: o.client,
        });
        o.log(`  ${s.name} warm-up, ${clients} client(s): ${Math.round(r.perSecond)} req/s`);
      }
    }
  }
  for (const c of CONFIGS) {
    const byName = new Map<string, LoadRun[]>();
    const cpuByName = new Map<string, CpuRun[]>();
    for (let run = 0; run < o.runs; run++) {
      // Who goes first alternates: with fresh clusters the second-started one measured ~0.05 ms
      // faster per write (an A/A control showed it too), so no system always takes one slot.
      for (const s of run % 2 === 0 ? systems : [...systems].reverse()) {
        const url = c.via === "leader" ? await s.leaderUrl() : await s.followerUrl();
        const meter = c.cpu ? new CpuMeter(clusterProcesses(s.dir)) : undefined;
        let window: CpuWindow | undefined;
        const r = await runLoad(
          (poster, w, i) => s.write(poster, url, c.rows, (w * 7919 + i) * c.rows),
          {
            concurrency: c.clients,
            durationMs: o.durationMs,
            warmupMs: o.warmupMs,
            client: o.client,
            window: meter && ((phase) => {
              if (phase === "start") meter.start();
              else window = meter.stop();
            }),
          },
        );
        if (window !== undefined && r.ok > 0) {
          if (!cpuByName.has(s.name)) cpuByName.set(s.name, []);
          cpuByName.get(s.name)!.push(cpuRun(window, r.ok));
        }
        o.log(
          `  ${s.name} ${label(c)} run ${run + 1}: ${Math.round(r.perSecond)} req/s, p50 ` +
            `${quantile(r.latenciesMs, 0.5).toFixed(2)} ms, ${r.failed} failed` +
            (r.firstError ? ` (${r.firstError})` : ""),
        );
        if (!byName.has(s.name)) byName.set(s.name, []);
        byName.get(s.name)!.push(r);
      }
    }
    if (cpuByName.size > 0) results.push(...cpuResults(c, cpuByName));
    const ctl = summarize(byName.get("ctl") ?? []);
    const etcdRuns = byName.get("etcd");
    const etcd = etcdRuns ? summarize(etcdRuns) : undefined;
    const rowsUnit = c.rows === 1 ? "writes/s" : "rows/s";
    const warmedUp = o.firstWarmupMs
      ? `, after ${o.firstWarmupMs / 1000} s of writes to each system first`
      : "";
    const failures = (x: Runs) => x.failed ? `; ${x.failed} failed requests` : "";
    results.push({
      bench: "write",
      name: `write throughput, ${label(c)}`,
      unit: rowsUnit,
      median: median(ctl.perSecond) * c.rows,
      p99: NaN,
      n: ctl.perSecond.length,
      etcd: etcd && { median: median(etcd.perSecond) * c.rows, p99: NaN, n: etcd.perSecond.length },
      target: c.throughputTarget,
      note: `median of ${ctl.perSecond.length} runs of ${o.durationMs / 1000} s${warmedUp}${
        failures(ctl)
      }`,
      detail: { ctlRunsPerSecond: ctl.perSecond, etcdRunsPerSecond: etcd?.perSecond },
    });
    results.push({
      bench: "write",
      name: `write latency, ${label(c)}`,
      unit: "ms",
      median: quantile(ctl.latencies, 0.5),
      p99: quantile(ctl.latencies, 0.99),
      n: ctl.latencies.length,
      etcd: etcd && {
        median: quantile(etcd.latencies, 0.5),
        p99: quantile(etcd.latencies, 0.99),
        n: etcd.latencies.length,
      },
      target: c.latencyTarget,
      note: "client-observed, request sent → reply read",
    });
  }
  return results;
}

/** CPU of one load run: µs per acknowledged write, whole machine and busiest process. */
interface CpuRun {
  totalUsPerWrite: number;
  /** The part of `totalUsPerWrite` spent in the kernel (system time). */
  systemUsPerWrite: number;
  clientUsPerWrite: number;
  busiestUsPerWrite: number;
  /** Share of the machine's cores the run kept busy (0–1). */
  machineBusy: number;
  perProcess: Record<string, number>;
}

function cpuRun(w: CpuWindow, writes: number): CpuRun {
  const perProcess: Record<string, number> = {};
  let cpuSeconds = 0;
  let systemSeconds = 0;
  for (const seconds of w.system.values()) systemSeconds += seconds;
  let busiest = 0;
  for (const [name, seconds] of w.cpu) {
    const us = 1e6 * seconds / writes;
    perProcess[name] = us;
    cpuSeconds += seconds;
    if (name !== "client") busiest = Math.max(busiest, us);
  }
  return {
    totalUsPerWrite: 1e6 * cpuSeconds / writes,
    systemUsPerWrite: 1e6 * systemSeconds / writes,
    clientUsPerWrite: perProcess.client ?? NaN,
    busiestUsPerWrite: busiest,
    machineBusy: cpuSeconds / w.wallSeconds / navigator.hardwareConcurrency,
    perProcess,
  };
}

function cpuResults(c: Config, byName: Map<string, CpuRun[]>): Result[] {
  const pick = (name: string, f: (r: CpuRun) => number) => {
    const runs = byName.get(name);
    return runs && { median: median(runs.map(f)), p99: NaN, n: runs.length };
  };
  const ctlTotal = pick("ctl", (r) => r.totalUsPerWrite);
  if (ctlTotal === undefined) return [];
  const cores = navigator.hardwareConcurrency;
  const ceiling = (us: number) => Math.round(cores * 1e6 / us).toLocaleString("en-US");
  const busy = (name: string) => {
    const b = pick(name, (r) => r.machineBusy);
    return b ? `${Math.round(100 * b.median)}%` : "–";
  };
  const etcdTotal = pick("etcd", (r) => r.totalUsPerWrite);
  return [
    {
      bench: "write",
      name: `CPU per write, ${label(c)}: every process (3 members + load generator)`,
      unit: "µs",
      ...ctlTotal,
      etcd: etcdTotal,
      note: `user + system time from /proc over the counted window, per acknowledged write; ` +
        `${cores} cores busy: ctl ${busy("ctl")}, etcd ${busy("etcd")}; all ${cores} cores at ` +
        `this cost would be ${ceiling(ctlTotal.median)} writes/s for ctl` +
        (etcdTotal ? `, ${ceiling(etcdTotal.median)} for etcd` : ""),
      detail: Object.fromEntries([...byName].map(([name, runs]) => [name, runs])),
    },
    {
      bench: "write",
      name: `CPU per write, ${label(c)}: every process, in the kernel`,
      unit: "µs",
      ...pick("ctl", (r) => r.systemUsPerWrite)!,
      etcd: pick("etcd", (r) => r.systemUsPerWrite),
      note: "system time: sockets, fdatasync, page faults, futex wake-ups; the rest is user space",
    },
    {
      bench: "write",
      name: `CPU per write, ${label(c)}: busiest member`,
      unit: "µs",
      ...pick("ctl", (r) => r.busiestUsPerWrite)!,
      etcd: pick("etcd", (r) => r.busiestUsPerWrite),
      note: "the member that used the most CPU in the run",
    },
    {
      bench: "write",
      name: `CPU per write, ${label(c)}: load generator`,
      unit: "µs",
      ...pick("ctl", (r) => r.clientUsPerWrite)!,
      etcd: pick("etcd", (r) => r.clientUsPerWrite),
      note: `the same client for both; what it uses of the ${cores} cores the servers cannot`,
    },
  ];
}
