/**
 * Where one write's time goes, hop by hop: starts 3 executives recording their timelines
 * (`src/util/timeline.ts`, `CTL_TIMELINE_DIR`), sends single-row writes one at a time from a raw
 * HTTP/1.1 client (as `deno task bench` does), and lines up, per write, when the client sent it,
 * when the leader's handler ran, proposed and put the append on the wire, when the faster
 * follower took the frame, wrote and fdatasynced it and sent its acknowledgement, when the leader
 * applied the committed entry and replied, and when the client had the answer.
 *
 *   deno run -A bench/suite/timeline.ts [--writes 3000] [--warmup 1000] [--json FILE]
 *
 * Prints the median and p90 of each step (µs). The medians of the steps add up to about the
 * median write, since the steps of one write follow each other. All processes share one clock.
 */
import { parseArgs } from "node:util";
import { RawPoster } from "./http1.ts";
import { quantile, type Result } from "./stats.ts";
import { CtlSystem, KEYS } from "./systems.ts";

/** One process's marks: time (ms, wall clock) and point, in order. */
type Marks = { t: number; point: string }[];

/** The steps of one write, in µs. */
export const STEPS = [
  ["client → leader's handler (hop, HTTP server, routing)", "C.send", "L.http.in"],
  ["leader: body, auth, validation", "L.http.in", "L.propose"],
  ["leader: propose → append on the wire", "L.propose", "L.wire"],
  ["leader → follower (hop)", "L.wire", "F.frame"],
  ["follower: frame → log written", "F.frame", "F.written"],
  ["follower: fdatasync", "F.written", "F.synced"],
  ["follower: fsynced → ack sent", "F.synced", "F.acked"],
  ["follower → leader (hop)", "F.acked", "L.frame"],
  ["leader: ack → apply (step, commit, Ready)", "L.frame", "L.apply"],
  ["leader: SoR apply", "L.apply", "L.applied"],
  ["leader: applied → reply", "L.applied", "L.reply"],
  ["reply → client (HTTP server, hop)", "L.reply", "C.recv"],
] as const;

function readMarks(path: string): Marks {
  const out: Marks = [];
  for (const line of Deno.readTextFileSync(path).split("\n")) {
    const sp = line.indexOf(" ");
    if (sp > 0) out.push({ t: Number(line.slice(0, sp)), point: line.slice(sp + 1) });
  }
  return out.sort((a, b) => a.t - b.t);
}

/** The first mark named `point` in [from, to), or undefined. */
function first(marks: Marks, point: string, from: number, to: number): number | undefined {
  let lo = 0;
  let hi = marks.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (marks[mid].t < from) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < marks.length && marks[i].t < to; i++) {
    if (marks[i].point === point) return marks[i].t;
  }
  return undefined;
}

/**
 * The named times of one write sent at `send` and answered at `recv`, or null when a mark is
 * missing (a heartbeat or an election in between is not worth guessing around).
 */
export function lineUp(
  send: number,
  recv: number,
  leader: Marks,
  followers: Marks[],
): Record<string, number> | null {
  const at: Record<string, number> = { "C.send": send, "C.recv": recv };
  const l = (name: string, point: string, from: number) => {
    const t = first(leader, point, from, recv);
    if (t !== undefined) at[name] = t;
    return t;
  };
  const httpIn = l("L.http.in", "http.in", send);
  if (httpIn === undefined) return null;
  const propose = l("L.propose", "propose", httpIn);
  if (propose === undefined) return null;
  const wire = l("L.wire", "wire", propose);
  if (wire === undefined) return null;
  // The follower whose acknowledgement left first is the one the commit waited for.
  let best: Record<string, number> | null = null;
  for (const f of followers) {
    const frame = first(f, "frame", wire, recv);
    if (frame === undefined) continue;
    const written = first(f, "written", frame, recv);
    if (written === undefined) continue;
    const synced = first(f, "synced", written, recv);
    if (synced === undefined) continue;
    const acked = first(f, "acked", synced, recv);
    if (acked === undefined) continue;
    if (best === null || acked < best["F.acked"]) {
      best = { "F.frame": frame, "F.written": written, "F.synced": synced, "F.acked": acked };
    }
  }
  if (best === null) return null;
  Object.assign(at, best);
  const ack = l("L.frame", "frame", best["F.acked"]);
  if (ack === undefined) return null;
  const apply = l("L.apply", "apply", ack);
  if (apply === undefined) return null;
  const applied = l("L.applied", "applied", apply);
  if (applied === undefined) return null;
  if (l("L.reply", "reply", applied) === undefined) return null;
  return at;
}

/** What `measureTimeline` saw: samples (µs) per step of `STEPS`, and of the whole write. */
export interface TimelineRun {
  sent: number;
  lined: number;
  steps: number[][];
  totals: number[];
  leaderFsync: number[];
}

/**
 * Starts its own 3 executives under `dir` with timelines on (the variable is set only while
 * they spawn, so later processes do not record), sends `writes` sequential single-row writes
 * after `warmup` more, stops the cluster and lines the records up. Samples come back sorted.
 */
export async function measureTimeline(
  dir: string,
  o: { writes: number; warmup: number },
): Promise<TimelineRun> {
  const timelineDir = `${dir}/timelines`;
  Deno.env.set("CTL_TIMELINE_DIR", timelineDir);
  let sys: CtlSystem;
  try {
    sys = await CtlSystem.start(`${dir}/timeline-cluster`);
  } finally {
    Deno.env.delete("CTL_TIMELINE_DIR");
  }
  const client: { send: number; recv: number }[] = [];
  try {
    const url = await sys.leaderUrl();
    const poster = new RawPoster();
    const now = () => performance.timeOrigin + performance.now();
    for (let i = 0; i < o.warmup; i++) await sys.write(poster, url, 1, i % KEYS);
    for (let i = 0; i < o.writes; i++) {
      const send = now();
      const ok = await sys.write(poster, url, 1, i % KEYS);
      const recv = now();
      if (ok) client.push({ send, recv });
    }
    poster.close();
    await new Promise((r) => setTimeout(r, 500)); // the executives' last flush
  } finally {
    await sys.stop();
  }

  const files = [...Deno.readDirSync(timelineDir)].map((e) =>
    readMarks(`${timelineDir}/${e.name}`)
  );
  const leader = files.find((m) => m.some((x) => x.point === "http.in"));
  if (!leader) throw new Error("no executive recorded a write");
  const followers = files.filter((m) => m !== leader && m.some((x) => x.point === "frame"));
  const run: TimelineRun = {
    sent: client.length,
    lined: 0,
    steps: STEPS.map(() => []),
    totals: [],
    leaderFsync: [],
  };
  for (const { send, recv } of client) {
    const at = lineUp(send, recv, leader, followers);
    if (at === null) continue;
    run.lined++;
    run.totals.push((recv - send) * 1000);
    STEPS.forEach(([, from, to], i) => run.steps[i].push((at[to] - at[from]) * 1000));
    const written = first(leader, "written", at["L.propose"], recv);
    const synced = written && first(leader, "synced", written, recv);
    if (written && synced) run.leaderFsync.push((synced - written) * 1000);
  }
  if (run.lined === 0) throw new Error("no write could be lined up");
  for (const xs of [...run.steps, run.totals, run.leaderFsync]) xs.sort((a, b) => a - b);
  return run;
}

/** The report's rows: each step of one sequential write, then the whole write. */
export async function benchTimeline(
  dir: string,
  o: { writes: number; warmup: number; log: (line: string) => void },
): Promise<Result[]> {
  const run = await measureTimeline(dir, o);
  o.log(`  timeline: ${run.lined} of ${run.sent} writes lined up`);
  const row = (name: string, samples: number[], note?: string): Result => ({
    bench: "timeline",
    name,
    unit: "µs",
    median: quantile(samples, 0.5),
    p99: quantile(samples, 0.99),
    n: samples.length,
    ...(note ? { note } : {}),
  });
  return [
    ...STEPS.map(([label], i) => row(`one write, step: ${label}`, run.steps[i])),
    row(
      "one write, whole (as the client saw it)",
      run.totals,
      "sequential single-row writes, each lined up across the client's and the executives' " +
        "recorded points (bench/suite/timeline.ts); the follower is the one that acked first",
    ),
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      writes: { type: "string", default: "3000" },
      warmup: { type: "string", default: "1000" },
      json: { type: "string" },
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "ctl-timeline-" });
  let run: TimelineRun;
  try {
    run = await measureTimeline(dir, {
      writes: Number(values.writes),
      warmup: Number(values.warmup),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const fmt = (us: number) => us.toFixed(0).padStart(6);
  console.log(
    `${run.lined} of ${run.sent} sequential single-row writes lined up (µs; medians, p90)`,
  );
  const rows = STEPS.map(([label], i) => ({
    step: label,
    p50: quantile(run.steps[i], 0.5),
    p90: quantile(run.steps[i], 0.9),
  }));
  for (const r of rows) console.log(`  ${r.step.padEnd(58)} ${fmt(r.p50)} ${fmt(r.p90)}`);
  const sum = rows.reduce((s, r) => s + r.p50, 0);
  console.log(`  ${"sum of the step medians".padEnd(58)} ${fmt(sum)}`);
  console.log(
    `  ${"whole write, as the client saw it".padEnd(58)} ${fmt(quantile(run.totals, 0.5))} ${
      fmt(quantile(run.totals, 0.9))
    }`,
  );
  if (run.leaderFsync.length > 0) {
    console.log(
      `  ${"(beside: the leader's own fdatasync)".padEnd(58)} ${
        fmt(quantile(run.leaderFsync, 0.5))
      } ${fmt(quantile(run.leaderFsync, 0.9))}`,
    );
  }
  if (values.json) {
    await Deno.writeTextFile(
      values.json,
      JSON.stringify(
        { writes: run.lined, steps: rows, totalP50: quantile(run.totals, 0.5) },
        null,
        2,
      ),
    );
  }
}

if (import.meta.main) await main();
