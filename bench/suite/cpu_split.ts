/**
 * Where the machine's CPU goes under one write load: starts a 3-member ctl (or etcd) cluster,
 * drives it with the same closed-loop HTTP client as `deno task bench`, and reads each process's
 * CPU time (user + system, from /proc) before and after. Prints CPU per acknowledged write for
 * the load generator, the leader and each follower, and how much of it the kernel spent.
 *
 *   deno run -A bench/suite/cpu_split.ts [--system ctl|etcd] [--clients 64] [--rows 1]
 *                                        [--seconds 10] [--etcd /usr/bin/etcd]
 *                                        [--client raw|fetch]
 *
 * Unlike `profile.ts` nothing is instrumented, so the figures are the processes' own cost; on a
 * 2-core machine they show how much of the budget the client takes and how close to saturation
 * the cluster runs.
 */
import { parseArgs } from "node:util";
import { clientKind, runLoad } from "./load.ts";
import type { Poster } from "./http1.ts";
import { metricSum } from "./prom.ts";
import { clusterProcesses, CpuMeter } from "./proc_cpu.ts";
import { quantile } from "./stats.ts";
import { CtlSystem, ETCD_DEFAULT, EtcdSystem, KEYS, type KvSystem } from "./systems.ts";

/** Each member's count of durable log appends and SoR apply batches, from its /metrics. */
async function raftCounters(
  sys: CtlSystem,
): Promise<Map<string, { appends: number; applies: number; applySeconds: number }>> {
  const out = new Map<string, { appends: number; applies: number; applySeconds: number }>();
  for (const m of sys.cluster.members) {
    const text = await (await fetch(`${m.url}/metrics`)).text();
    out.set(m.id, {
      appends: metricSum(text, "ctl_raft_log_append_seconds_count"),
      applies: metricSum(text, "ctl_sor_apply_seconds_count"),
      applySeconds: metricSum(text, "ctl_sor_apply_seconds_sum"),
    });
  }
  return out;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    system: { type: "string", default: "ctl" },
    clients: { type: "string", default: "64" },
    rows: { type: "string", default: "1" },
    seconds: { type: "string", default: "10" },
    etcd: { type: "string", default: ETCD_DEFAULT },
    client: { type: "string", default: "raw" },
  },
});
const clients = Number(values.clients);
const rows = Number(values.rows);
const seconds = Number(values.seconds);

const dir = Deno.makeTempDirSync({ prefix: "ctl-cpu-split-" });
const sys: KvSystem = values.system === "etcd"
  ? await EtcdSystem.start(values.etcd!, dir)
  : await CtlSystem.start(dir);
try {
  const url = await sys.leaderUrl();
  const leaderPort = new URL(url).port;
  let key = 0;
  const send = (p: Poster) => sys.write(p, url, rows, (key += rows) % KEYS);
  const client = clientKind(values.client);
  await runLoad(send, { concurrency: clients, durationMs: 2_000, client }); // warm-up
  const meter = new CpuMeter(clusterProcesses(dir));
  const counters = () => sys instanceof CtlSystem ? raftCounters(sys) : Promise.resolve(new Map());
  const countsBefore = await counters();
  meter.start();
  const run = await runLoad(send, { concurrency: clients, durationMs: seconds * 1000, client });
  const { wallSeconds, cpu, system } = meter.stop();
  const countsAfter = await counters();
  let total = 0;
  let totalSystem = 0;
  console.log(
    `${values.system}: ${clients} clients × ${rows} row(s): ${
      run.perSecond.toFixed(0)
    } writes/s, ` +
      `p50 ${quantile(run.latenciesMs, 0.5).toFixed(2)} ms`,
  );
  for (const [pid, name] of meter.processes) {
    const used = cpu.get(name)!;
    total += used;
    totalSystem += system.get(name)!;
    const args = pid === Deno.pid ? [] : Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    // The member whose own client listener is the leader's URL (ctl --listen, etcd
    // --listen-client-urls); every member's peer list names the leader too.
    const listen = args[args.indexOf("--listen") + 1] ?? "";
    const clientUrls = args[args.indexOf("--listen-client-urls") + 1] ?? "";
    const role = pid === Deno.pid
      ? "load generator"
      : [listen, clientUrls].some((a) => a.endsWith(`:${leaderPort}`))
      ? "leader"
      : "follower";
    console.log(
      `  ${name.padEnd(8)} ${role.padEnd(15)} ${
        (100 * used / wallSeconds).toFixed(0).padStart(4)
      }% ` +
        `of a core, ${(1e6 * used / run.ok).toFixed(0).padStart(6)} µs CPU per write ` +
        `(${(100 * system.get(name)! / used).toFixed(0)}% in the kernel)`,
    );
  }
  for (const [id, after] of countsAfter) {
    const b = countsBefore.get(id);
    if (!b) continue;
    const appends = after.appends - b.appends;
    const applies = after.applies - b.applies;
    const applyUs = 1e6 * (after.applySeconds - b.applySeconds) / run.ok;
    console.log(
      `  ${id.padEnd(8)} ${(appends / run.ok).toFixed(3)} log appends (fsyncs) per write, ` +
        `${(run.ok / Math.max(1, applies)).toFixed(1)} writes per SoR apply, ` +
        `${applyUs.toFixed(1)} µs of SoR apply per write`,
    );
  }
  console.log(
    `  total: ${(100 * total / wallSeconds).toFixed(0)}% of ${navigator.hardwareConcurrency} ` +
      `cores, ${(1e6 * total / run.ok).toFixed(0)} µs CPU per write ` +
      `(${(1e6 * totalSystem / run.ok).toFixed(0)} in the kernel)`,
  );
} finally {
  await sys.stop();
  Deno.removeSync(dir, { recursive: true });
}
