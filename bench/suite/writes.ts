/**
 * Write throughput and latency: 1 and 64 closed-loop clients, single-row writes and 100-row
 * batches, against the leader (and one sequential client through a follower, which forwards).
 * Runs alternate between ctl and etcd so both see the same background noise; throughput is the
 * median over runs, latency percentiles are over every sample of every run.
 */
import { type ClientKind, type LoadRun, runLoad } from "./load.ts";
import type { KvSystem } from "./systems.ts";
import { median, quantile, type Result, sorted, type Target } from "./stats.ts";

export interface WriteOptions {
  durationMs: number;
  warmupMs: number;
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
  for (const c of CONFIGS) {
    const byName = new Map<string, LoadRun[]>();
    for (let run = 0; run < o.runs; run++) {
      for (const s of systems) {
        const url = c.via === "leader" ? await s.leaderUrl() : await s.followerUrl();
        const r = await runLoad(
          (poster, w, i) => s.write(poster, url, c.rows, (w * 7919 + i) * c.rows),
          {
            concurrency: c.clients,
            durationMs: o.durationMs,
            warmupMs: o.warmupMs,
            client: o.client,
          },
        );
        o.log(
          `  ${s.name} ${label(c)} run ${run + 1}: ${Math.round(r.perSecond)} req/s, p50 ` +
            `${quantile(r.latenciesMs, 0.5).toFixed(2)} ms, ${r.failed} failed` +
            (r.firstError ? ` (${r.firstError})` : ""),
        );
        if (!byName.has(s.name)) byName.set(s.name, []);
        byName.get(s.name)!.push(r);
      }
    }
    const ctl = summarize(byName.get("ctl") ?? []);
    const etcdRuns = byName.get("etcd");
    const etcd = etcdRuns ? summarize(etcdRuns) : undefined;
    const rowsUnit = c.rows === 1 ? "writes/s" : "rows/s";
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
      note: `median of ${ctl.perSecond.length} runs of ${o.durationMs / 1000} s${failures(ctl)}`,
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
