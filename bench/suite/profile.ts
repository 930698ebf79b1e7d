/**
 * Where a write's time goes on the executives: starts 3 executives under `--inspect`, drives one
 * write load (default 64 clients, single rows, to the leader), records a V8 CPU profile of the
 * leader and of one follower over the Chrome DevTools protocol, and scrapes each member's
 * `/metrics` before and after (Raft log append = write + fsync, appends per write).
 *
 *   deno run -A bench/suite/profile.ts [--clients 64] [--rows 1] [--seconds 10] [--via leader]
 *                                      [--out DIR]
 *
 * Prints the top functions by self time, the split by code area (HTTP server, hono, JSON,
 * validation, Raft, log store, SoR apply, SQLite, GC, idle) and the append figures; writes the
 * raw `.cpuprofile` files (open in Chrome DevTools → Performance) beside a summary JSON.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CtlProcess, freePorts, sleep, waitFor } from "../../tests/system/harness.ts";
import { runLoad } from "./load.ts";
import { metricSum } from "./prom.ts";
import { CtlSystem } from "./systems.ts";
import { quantile } from "./stats.ts";

/** A `ctl` process started with `--inspect=127.0.0.1:PORT`. */
class InspectedProcess extends CtlProcess {
  constructor(from: CtlProcess, readonly inspectPort: number) {
    super(from.name, from.args, from.logFile, [`--inspect=127.0.0.1:${inspectPort}`]);
  }
}

/** A DevTools protocol session over the inspector's WebSocket. */
class Inspector {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: unknown) => void>();
  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data));
      if (m.id !== undefined) this.waiting.get(m.id)?.(m.result ?? m.error);
    };
  }

  static async connect(port: number): Promise<Inspector> {
    const list = await waitFor(`the inspector on port ${port}`, async () => {
      const res = await fetch(`http://127.0.0.1:${port}/json/list`);
      return await res.json() as { webSocketDebuggerUrl: string }[];
    });
    const ws = new WebSocket(list[0].webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    return new Inspector(ws);
  }

  send<T>(method: string, params: unknown = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve as (r: unknown) => void);
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.ws.close();
  }
}

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The code area a frame belongs to; the first matching rule wins. */
const AREAS: [string, (f: CpuNode["callFrame"]) => boolean][] = [
  ["idle", (f) => f.functionName === "(idle)"],
  ["GC", (f) => f.functionName === "(garbage collector)"],
  ["(program): V8/Rust runtime outside JS", (f) => f.functionName === "(program)"],
  ["raft core (raft/)", (f) => f.url.includes("/raft/") && !f.url.includes("/src/")],
  ["raft log store (segment files, fsync)", (f) => f.url.includes("/raftnode/storage/")],
  ["raft transport (peer HTTP streams)", (f) => f.url.includes("/raftnode/transport/")],
  ["raft node driver (Ready loop)", (f) => f.url.includes("/src/raftnode/")],
  [
    "SoR apply + SQLite (src/sor, src/ledger)",
    (f) => f.url.includes("/src/sor/") || f.url.includes("/src/ledger/"),
  ],
  ["executive HTTP handlers (src/executive)", (f) => f.url.includes("/src/executive/")],
  ["hono router/context", (f) => f.url.includes("hono")],
  ["prom-client / logtape", (f) => f.url.includes("prom-client") || f.url.includes("logtape")],
  [
    "Deno HTTP server + fetch (ext:deno_http, ext:deno_fetch)",
    (f) => /ext:deno_(http|fetch|web|net)|ext:deno_node\/.*http/.test(f.url),
  ],
  ["other Deno runtime (ext:)", (f) => f.url.startsWith("ext:") || f.url.startsWith("node:")],
  ["other app code", (f) => f.url.includes("/work/")],
  ["native, called from the runtime", () => true],
];

/** Frames of native code (SQLite calls, JSON, crypto, ops): no script URL. */
const isNative = (f: CpuNode["callFrame"]) =>
  f.url === "" &&
  !["(idle)", "(garbage collector)", "(program)", "(root)"].includes(f.functionName);

function areaOf(f: CpuNode["callFrame"]): string {
  return AREAS.find(([, test]) => test(f))![0];
}

/**
 * Self time by function and by area; and inclusive time of a few functions of interest (a
 * frame's samples count once per function even under recursion).
 */
function analyse(p: CpuProfile) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
  }
  const totalUs = p.endTime - p.startTime;
  const fnSelf = new Map<string, number>();
  const areaSelf = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const name = (f: CpuNode["callFrame"]) =>
    `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*\/work\/main\//, "")}:${
      f.lineNumber + 1
    }`;
  // A native frame (a SQLite call, JSON.parse, an op) counts in the area of the script frame that
  // called it: `exec` under the SoR's #transaction is SoR time.
  const areaOfNode = (id: number): string => {
    let at: number | undefined = id;
    while (at !== undefined && isNative(byId.get(at)!.callFrame)) at = parent.get(at);
    if (at === undefined) return "native, called from the runtime";
    return areaOf(byId.get(at)!.callFrame);
  };
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    fnSelf.set(name(f), (fnSelf.get(name(f)) ?? 0) + us);
    const area = areaOfNode(id);
    areaSelf.set(area, (areaSelf.get(area) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const k = name(byId.get(at)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => ({
      what: k,
      ms: Math.round(us / 1000),
      pct: Math.round((1000 * us) / totalUs) / 10,
    }));
  return {
    totalMs: Math.round(totalUs / 1000),
    areas: top(areaSelf, 30),
    selfTop: top(fnSelf, 40),
    inclusiveTop: top(inclusive, 60),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      clients: { type: "string", default: "64" },
      rows: { type: "string", default: "1" },
      seconds: { type: "string", default: "10" },
      via: { type: "string", default: "leader" },
      out: { type: "string" },
    },
  });
  const clients = Number(values.clients);
  const rows = Number(values.rows);
  const durationMs = Number(values.seconds) * 1000;
  const outDir = values.out ?? new URL("../results/", import.meta.url).pathname;
  Deno.mkdirSync(outDir, { recursive: true });
  const dir = Deno.makeTempDirSync({ prefix: "ctl-bench-profile-" });

  // The harness builds the processes; swap each for one started under the inspector.
  const inspectPorts = freePorts(3);
  const ctlPromise = (async () => {
    // CtlSystem.start starts the cluster itself; patch the class's processes first.
    const { Cluster } = await import("../../tests/system/harness.ts");
    const origStart = Cluster.prototype.start;
    Cluster.prototype.start = function (this: InstanceType<typeof Cluster>) {
      this.members.forEach((m, i) => {
        m.process = new InspectedProcess(m.process, inspectPorts[i]);
      });
      origStart.call(this);
    };
    try {
      return await CtlSystem.start(dir);
    } finally {
      Cluster.prototype.start = origStart;
    }
  })();
  const ctl = await ctlPromise;
  try {
    const leader = await ctl.cluster.leader();
    const follower = ctl.cluster.members.find((m) => m.id !== leader.id)!;
    const target = values.via === "follower" ? follower.url : leader.url;
    const profiled = [leader.id, follower.id];
    const inspectors = await Promise.all(
      profiled.map((id) =>
        Inspector.connect((ctl.cluster.member(id).process as InspectedProcess).inspectPort)
      ),
    );
    // Warm up (JIT, connections), then profile the measured run.
    await runLoad((c, w, i) => ctl.write(c, target, rows, (w * 7919 + i) * rows), {
      concurrency: clients,
      durationMs: 2000,
    });
    const before = await Promise.all(
      ctl.cluster.members.map((m) => fetch(`${m.url}/metrics`).then((r) => r.text())),
    );
    for (const ins of inspectors) {
      await ins.send("Profiler.enable");
      await ins.send("Profiler.setSamplingInterval", { interval: 200 });
      await ins.send("Profiler.start");
    }
    const run = await runLoad((c, w, i) => ctl.write(c, target, rows, (w * 7919 + i) * rows), {
      concurrency: clients,
      durationMs,
    });
    const profiles = await Promise.all(
      inspectors.map((ins) => ins.send<{ profile: CpuProfile }>("Profiler.stop")),
    );
    const after = await Promise.all(
      ctl.cluster.members.map((m) => fetch(`${m.url}/metrics`).then((r) => r.text())),
    );
    inspectors.forEach((i) => i.close());

    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const summary: Record<string, unknown> = {
      load: {
        clients,
        rows,
        via: values.via,
        seconds: durationMs / 1000,
        writesPerSecond: Math.round(run.perSecond),
        p50Ms: quantile(run.latenciesMs, 0.5),
        p99Ms: quantile(run.latenciesMs, 0.99),
        failed: run.failed,
      },
    };
    console.log(
      `load: ${clients} clients × ${rows} row(s) via ${values.via}: ${
        Math.round(run.perSecond)
      } writes/s, p50 ${quantile(run.latenciesMs, 0.5).toFixed(2)} ms, p99 ${
        quantile(run.latenciesMs, 0.99).toFixed(2)
      } ms`,
    );
    const members: Record<string, unknown> = {};
    ctl.cluster.members.forEach((m, i) => {
      const d = (n: string) => metricSum(after[i], n) - metricSum(before[i], n);
      const appends = d("ctl_raft_log_append_seconds_count");
      const appendS = d("ctl_raft_log_append_seconds_sum");
      const writes = run.ok;
      members[m.id] = {
        role: m.id === leader.id ? "leader" : "follower",
        appends,
        appendMeanMs: appends ? (1000 * appendS) / appends : null,
        appendBusyPct: Math.round((1000 * appendS) / (durationMs / 1000)) / 10,
        writesPerAppend: appends ? writes / appends : null,
      };
      console.log(
        `${m.id} (${m.id === leader.id ? "leader" : "follower"}): ${appends} log appends, ` +
          `mean ${(appends ? (1000 * appendS) / appends : 0).toFixed(2)} ms (write + fsync), ` +
          `${(writes / Math.max(1, appends)).toFixed(1)} writes per append, disk busy ` +
          `${((100 * appendS) / (durationMs / 1000)).toFixed(0)}% of the run`,
      );
    });
    summary.members = members;
    profiles.forEach(({ profile }, i) => {
      const id = profiled[i];
      const file = join(outDir, `profile-${stamp}-${id}.cpuprofile`);
      Deno.writeTextFileSync(file, JSON.stringify(profile));
      const a = analyse(profile);
      summary[id] = { role: i === 0 ? "leader" : "follower", file, ...a };
      console.log(`\n== ${id} (${i === 0 ? "leader" : "follower"}) CPU: ${file}`);
      console.log(
        "self time by area (native calls counted in their caller's area), CPU per write:",
      );
      for (const x of a.areas) {
        const perWriteUs = (1000 * x.ms) / Math.max(1, run.ok);
        console.log(
          `  ${String(x.pct).padStart(5)}%  ${
            perWriteUs.toFixed(0).padStart(6)
          } µs/write  ${x.what}`,
        );
      }
      console.log("top functions by self time:");
      for (const x of a.selfTop.slice(0, 25)) {
        console.log(`  ${String(x.pct).padStart(5)}%  ${x.what}`);
      }
      console.log("top functions by inclusive time (app code):");
      for (const x of a.inclusiveTop.filter((x) => x.what.includes("src/")).slice(0, 25)) {
        console.log(`  ${String(x.pct).padStart(5)}%  ${x.what}`);
      }
    });
    const file = join(outDir, `profile-${stamp}.json`);
    Deno.writeTextFileSync(file, JSON.stringify(summary, null, 2) + "\n");
    console.log(`\nsummary: ${file}`);
  } finally {
    await ctl.stop();
    await sleep(100);
    Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
