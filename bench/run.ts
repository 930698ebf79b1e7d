/**
 * The whole-system benchmark (`deno task bench`): 3 `ctl executive` processes on loopback with
 * fsync on, and — where Debian's etcd is installed — a 3-member etcd cluster beside them, given
 * the same write load by the same HTTP client. Prints a table (median, p99, unit, ctl/etcd, target
 * met/missed) and writes the figures to `bench/results/<timestamp>.json`.
 *
 *   deno run -A bench/run.ts [--quick] [--only NAME,…] [--duration-s 5] [--runs 3]
 *                            [--etcd /usr/bin/etcd | --no-etcd] [--client raw|fetch]
 *                            [--results-dir DIR] [--keep]
 *
 * Benches (`--only`): disk (fdatasync as ctl's log and etcd's WAL do it), sor (SoR apply without
 * Raft), reader (reader-library point reads), sidecar (`ctl sidecar` throughput), write (1 and 64
 * clients, 1-row and 100-row writes, ctl and etcd interleaved), breakdown (one sequential write
 * step by step), timeline (one sequential write hop by hop across the processes, on a cluster of its
 * own), propagation (write ack → row in a reflector's LDB), bootstrap (`GET /v1/snapshot`
 * installed as a new LDB), failover (kill -9 of the leader). Progress goes to stderr; the table to
 * stdout. Medians over several result files: `bench/suite/summarize.ts`; CPU profiles of the
 * executives under load: `bench/suite/profile.ts`.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import Table from "cli-table3";
import { type LoggedProcess, reflector } from "../tests/system/harness.ts";
import { benchBootstrap } from "./suite/bootstrap.ts";
import { benchBreakdown } from "./suite/breakdown.ts";
import { probeFsync, probeFsyncDuringZeroFill } from "./suite/fsync_probe.ts";
import { probeSorApply } from "./suite/sor_apply_probe.ts";
import { benchFailover } from "./suite/failover.ts";
import { benchReader, benchSidecar } from "./suite/local.ts";
import { benchPropagation } from "./suite/propagation.ts";
import { fmt, median, ratio, type Result, verdict } from "./suite/stats.ts";
import {
  CtlSystem,
  ETCD_DEFAULT,
  ETCD_INSTALL_HINT,
  EtcdSystem,
  type KvSystem,
} from "./suite/systems.ts";
import { benchTimeline } from "./suite/timeline.ts";
import { benchWrites } from "./suite/writes.ts";
import { type ClientKind, clientKind } from "./suite/load.ts";

export const BENCHES = [
  "disk",
  "sor",
  "reader",
  "sidecar",
  "write",
  "breakdown",
  "timeline",
  "propagation",
  "bootstrap",
  "failover",
];
const NEEDS_CLUSTER = new Set(["write", "breakdown", "propagation", "bootstrap", "failover"]);
const NEEDS_ETCD = new Set(["write", "breakdown", "failover"]);

const USAGE = `Usage: deno run -A bench/run.ts [options]
  --quick              short runs, for a smoke check
  --only NAMES         comma-separated subset of: ${BENCHES.join(", ")}
  --duration-s N       seconds per measured load run (default 5; --quick 1)
  --runs N             repetitions of each load run / kill (default 3; --quick 1)
  --etcd PATH          etcd binary to compare against (default: ${ETCD_DEFAULT} when present)
  --no-etcd            do not run etcd
  --client raw|fetch   how the load generator sends: raw HTTP/1.1 on a connection per client
                       (default, about 10 µs of CPU per request) or fetch (about 35)
  --results-dir DIR    where the JSON goes (default bench/results/)
  --keep               keep the temporary data directory and logs`;

const log = (line: string) => console.error(line);

function parse() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      "duration-s": { type: "string" },
      runs: { type: "string" },
      etcd: { type: "string" },
      "no-etcd": { type: "boolean", default: false },
      client: { type: "string" },
      "results-dir": { type: "string" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const only = values.only ? values.only.split(",").map((s) => s.trim()).filter(Boolean) : BENCHES;
  for (const name of only) {
    if (!BENCHES.includes(name)) {
      console.error(`Error: unknown bench "${name}" in --only\nTry: --only ${BENCHES.join(",")}`);
      Deno.exit(2);
    }
  }
  const quick = values.quick;
  const num = (v: string | undefined, def: number, what: string) => {
    const n = v === undefined ? def : Number(v);
    if (!(n > 0)) {
      console.error(`Error: ${what} must be a positive number, got "${v}"`);
      Deno.exit(2);
    }
    return n;
  };
  let client: ClientKind;
  try {
    client = clientKind(values.client);
  } catch (e) {
    console.error(`Error: ${(e as Error).message}`);
    Deno.exit(2);
  }
  return {
    quick,
    client,
    only: new Set(only),
    durationMs: num(values["duration-s"], quick ? 1 : 5, "--duration-s") * 1000,
    runs: Math.round(num(values.runs, quick ? 1 : 3, "--runs")),
    etcd: values["no-etcd"] ? undefined : values.etcd ?? ETCD_DEFAULT,
    etcdExplicit: values.etcd !== undefined,
    resultsDir: values["results-dir"] ??
      new URL("./results/", import.meta.url).pathname,
    keep: values.keep,
  };
}

function printTable(results: Result[], etcdShown: boolean): void {
  const head = ["figure", "unit", "ctl median", "ctl p99"];
  if (etcdShown) head.push("etcd median", "etcd p99", "ctl/etcd");
  head.push("target", "status");
  const table = new Table({ head, style: { head: [], border: [] } });
  for (const r of results) {
    const row = [r.name, r.unit, fmt(r.median), fmt(r.p99)];
    if (etcdShown) {
      const q = ratio(r);
      row.push(
        fmt(r.etcd?.median),
        fmt(r.etcd?.p99),
        q === undefined ? "" : `${q.toFixed(2)}×`,
      );
    }
    row.push(r.target?.text ?? "", verdict(r));
    table.push(row);
  }
  console.log(table.toString());
  const notes = results.filter((r) => r.note);
  if (notes.length > 0) {
    console.log("notes:");
    for (const r of notes) console.log(`  ${r.name}: ${r.note}`);
  }
}

async function main(): Promise<void> {
  const o = parse();
  const startedAt = new Date();
  const wantCluster = [...o.only].some((b) => NEEDS_CLUSTER.has(b));
  const wantEtcd = [...o.only].some((b) => NEEDS_ETCD.has(b)) && o.etcd !== undefined;
  let etcdVersion: string | undefined;
  let etcdMissing = false;
  if (wantEtcd) {
    if (EtcdSystem.available(o.etcd!)) etcdVersion = await EtcdSystem.version(o.etcd!);
    else etcdMissing = true;
  }
  if (etcdMissing && o.etcdExplicit) {
    console.error(`Error: no etcd at ${o.etcd}\nTry: ${ETCD_INSTALL_HINT}`);
    Deno.exit(2);
  }
  if (etcdMissing) log(`note: ${ETCD_INSTALL_HINT}; running ctl alone`);

  const dir = Deno.makeTempDirSync({ prefix: "ctl-bench-" });
  let keep = o.keep;
  const results: Result[] = [];
  const systems: KvSystem[] = [];
  const stopAll = async () => {
    await Promise.all(systems.map((s) => s.stop().catch(() => {})));
  };
  const onSignal = () => {
    stopAll().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    if (o.only.has("disk")) {
      log("disk: one small append + fdatasync, as ctl's log and etcd's WAL do it");
      for (const r of await probeFsync(dir, o.quick ? 100 : 400, 200)) {
        results.push({
          bench: "disk",
          name: `disk: 200-byte ${r.mode}`,
          unit: "ms",
          median: r.p50Ms,
          p99: r.p99Ms,
          n: o.quick ? 100 : 400,
          note: "context for the write figures: what one durable append costs on this disk",
        });
      }
      for (const r of await probeFsyncDuringZeroFill(dir, o.quick ? 2 : 10, 200)) {
        results.push({
          bench: "disk",
          name: `disk: 200-byte preallocated append ${r.mode}`,
          unit: "ms",
          median: r.p50Ms,
          p99: r.p99Ms,
          n: r.n,
          note: `appends 1 ms apart, blocking calls; worst ${fmt(r.maxMs)} ms: what a segment ` +
            "roll-over (and a member's start) does to the log's fsync",
        });
      }
    }
    if (o.only.has("sor")) {
      log("sor: SoR apply without Raft, and its transaction envelope");
      const entries = o.quick ? 2_000 : 10_000;
      const rows = [];
      for (let run = 0; run < o.runs; run++) rows.push(probeSorApply(entries, 20));
      const figure = (name: string, values: number[], note: string): Result => ({
        bench: "sor",
        name,
        unit: "µs/entry",
        median: median(values),
        p99: NaN,
        n: values.length,
        note,
      });
      results.push(
        figure(
          "SoR applyEntries, single-row mutate, 20 entries per call",
          rows.map((r) => r.sorApplyUsPerEntry),
          `${entries} entries; median of ${o.runs} runs; no Raft, no HTTP`,
        ),
        figure(
          "SQLite: one transaction per entry",
          rows.map((r) => r.perEntryTxUsPerEntry),
          "upsert + ledger insert + applied index; BEGIN/SAVEPOINT/RELEASE/COMMIT per entry " +
            "(the SoR shares one transaction across batches for up to 5 ms)",
        ),
        figure(
          "SQLite: one transaction per batch of 20",
          rows.map((r) => r.perBatchTxUsPerEntry),
          "the same work; one BEGIN/COMMIT per batch, a savepoint per entry",
        ),
      );
    }
    if (o.only.has("reader")) {
      log("reader: point reads");
      results.push(...benchReader({ reads: o.quick ? 50_000 : 200_000, runs: o.runs }));
    }
    if (o.only.has("sidecar")) {
      log("sidecar: ctl sidecar throughput");
      results.push(
        ...await benchSidecar(dir, {
          durationMs: o.durationMs,
          warmupMs: o.quick ? 300 : 1000,
          runs: o.runs,
          log,
          client: o.client,
        }),
      );
    }
    if (o.only.has("timeline")) {
      log("timeline: one sequential write, hop by hop (a cluster of its own, recording)");
      results.push(
        ...await benchTimeline(dir, {
          writes: o.quick ? 300 : 3000,
          warmup: o.quick ? 100 : 1000,
          log,
        }),
      );
    }
    if (wantCluster) {
      log(`starting 3 ctl executives${etcdVersion ? ` and 3 etcd members (${etcdVersion})` : ""}`);
      const [ctlStart, etcdStart] = await Promise.allSettled([
        CtlSystem.start(dir),
        etcdVersion ? EtcdSystem.start(o.etcd!, dir) : Promise.resolve(undefined),
      ]);
      // Whatever started is stopped by the finally below, even if the other failed.
      if (ctlStart.status === "fulfilled") systems.push(ctlStart.value);
      if (etcdStart.status === "fulfilled" && etcdStart.value) systems.push(etcdStart.value);
      if (ctlStart.status === "rejected") throw ctlStart.reason;
      if (etcdStart.status === "rejected") throw etcdStart.reason;
      const ctl = ctlStart.value;
      const etcd = etcdStart.value;
      const reflectors: { label: string; path: string; process: LoggedProcess }[] = [];
      try {
        if (o.only.has("write")) {
          log("write: throughput and latency");
          results.push(
            ...await benchWrites(systems, {
              durationMs: o.durationMs,
              warmupMs: o.quick ? 300 : 1000,
              firstWarmupMs: o.quick ? 1000 : 15_000,
              runs: o.runs,
              log,
              client: o.client,
            }),
          );
        }
        if (o.only.has("breakdown")) {
          log("breakdown: one sequential write, step by step");
          results.push(
            ...await benchBreakdown(ctl, etcd, { requests: o.quick ? 100 : 500, log }),
          );
        }
        if (o.only.has("propagation")) {
          // Started only now: running beside the write phases they took a large share of the two
          // cores from the executives (each applies every row), which etcd's figures did not
          // pay. They replay the ledger so far before the clock starts.
          // Two reflectors: one streaming from the leader, one from a follower — as they are now:
          // the load before may have moved the leadership.
          const leaderUrl = await ctl.leaderUrl();
          const followerUrl = await ctl.followerUrl();
          for (
            const [label, name, url] of [
              ["reflector streaming from the leader", "r-leader", leaderUrl],
              ["reflector streaming from a follower", "r-follower", followerUrl],
            ]
          ) {
            const others = ctl.cluster.urls.filter((u) => u !== url);
            const process = reflector(dir, name, [url, ...others]);
            reflectors.push({ label, path: join(dir, name, "ldb.db"), process });
            process.start();
          }
          // ~1,000 writes/s as the target asks, and a lighter load that leaves the cluster idle
          // most of the time, to tell queueing from the path itself.
          for (const ratePerSecond of o.quick ? [1000] : [1000, 200]) {
            log(`propagation: write ack → reflector LDB at ${ratePerSecond} writes/s`);
            results.push(
              ...await benchPropagation(ctl, reflectors, {
                durationMs: o.quick ? 2_000 : Math.max(10_000, o.durationMs),
                warmupMs: 500,
                ratePerSecond,
                log,
              }),
            );
          }
        }
        if (o.only.has("bootstrap")) {
          log("bootstrap: GET /v1/snapshot → new LDB");
          results.push(
            ...await benchBootstrap(ctl, dir, {
              rows: o.quick ? 2_000 : 20_000,
              runs: o.quick ? 2 : 5,
              log,
            }),
          );
        }
        if (o.only.has("failover")) {
          log("failover: kill -9 of the leader");
          results.push(...await benchFailover(systems, { runs: o.runs, log }));
        }
      } finally {
        await Promise.all(reflectors.map((r) => r.process.kill("SIGTERM")));
      }
    }
  } catch (e) {
    keep = true; // the logs say why
    throw e;
  } finally {
    await stopAll();
    Deno.removeSignalListener("SIGINT", onSignal);
    if (keep) log(`data and logs kept in ${dir}`);
    else Deno.removeSync(dir, { recursive: true });
  }

  const etcdShown = results.some((r) => r.etcd);
  printTable(results, etcdShown);
  if (etcdMissing) console.log(`etcd comparison skipped: ${ETCD_INSTALL_HINT}`);
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: {
      quick: o.quick,
      only: [...o.only],
      durationMs: o.durationMs,
      runs: o.runs,
      client: o.client,
    },
    environment: {
      deno: Deno.version.deno,
      etcd: etcdVersion ?? null,
      cores: navigator.hardwareConcurrency,
      loadavg: Deno.loadavg(),
      executives: 3,
      fsync: true,
    },
    results: results.map((r) => ({ ...r, ratio: ratio(r) ?? null, status: verdict(r) || null })),
  };
  Deno.mkdirSync(o.resultsDir, { recursive: true });
  const file = join(o.resultsDir, `${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  // NaN is not JSON: write it as null.
  Deno.writeTextFileSync(
    file,
    JSON.stringify(report, (_k, v) => typeof v === "number" && !Number.isFinite(v) ? null : v, 2) +
      "\n",
  );
  console.log(`results: ${file}`);
}

if (import.meta.main) await main();
