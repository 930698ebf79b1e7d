/**
 * One fault schedule from start to verdict: a cluster in namespaces, two reflectors, concurrent
 * clients recording a history, a nemesis of one kind, then the checks:
 *
 * 1. the history is linearizable per key (register with compare-and-set, `kvModel`);
 * 2. no acknowledged write is lost: each is in the ledger, at the seq it was acknowledged with;
 * 3. idempotent retries applied once: no operation appears twice in the ledger, and no definitely
 *    failed compare-and-set appears at all;
 * 4. the ledger is gapless (seq 1..N) on every member;
 * 5. every member's SoR and every reflector's LDB have the same table checksums;
 * 6. each key's row agrees with its final cookie (the batch and the cookie are one atomic write).
 *
 * The report holds the operations, their failures, the checker's verdict and the longest window
 * without a successful write.
 */
import { DatabaseSync } from "node:sqlite";
import { checkEvents, formatCheckResult, kvModel, type Verdict } from "../../src/check/mod.ts";
import {
  call,
  checksumsOf,
  type CtlProcess,
  ldbSeq,
  reflector,
  rng,
  sleep,
  sorFileSeq,
  waitFor,
} from "../system/harness.ts";
import { FaultCluster } from "./cluster.ts";
import { ensurePackages } from "./net.ts";
import { Dice, FAULT_KINDS, Nemesis, type NemesisEvent, type ScheduleKind } from "./nemesis.ts";
import { FAMILY, type OpRecord, OPS_TABLE, setUpSchema, TABLE, Workload } from "./workload.ts";

export interface ScheduleOptions {
  seed: number;
  kind: ScheduleKind;
  /** 3 or 5 executives. */
  size: number;
  /** How long the nemesis runs while clients work. */
  durationMs: number;
  clients?: number;
  keys?: number;
  /** main.ts of the tree under test (default: this tree). */
  main?: string;
  /** Keep the data directory (logs, SoRs, LDBs) even when every check passes. */
  keepData?: boolean;
  /** Where data directories go (default: the system temp dir). */
  tmpDir?: string;
  /** Write the recorded history (JSON lines, `ctl check` reads them) here. */
  historyFile?: string;
  /** Progress lines go here. */
  log?: (line: string) => void;
}

export interface CheckLine {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ScheduleReport {
  seed: number;
  kind: ScheduleKind;
  size: number;
  durationMs: number;
  wallMs: number;
  ops: {
    total: number;
    byF: Record<string, { ok: number; fail: number; info: number }>;
    requests: number;
    statuses: Record<string, number>;
    unexpected: string[];
  };
  verdict: Verdict;
  checkerMs: number;
  explanation?: string;
  checks: CheckLine[];
  /** Every check passed and the verdict is `linearizable`. */
  ok: boolean;
  /** The longest time with no successful write (ok write, delete or cas) while clients ran. */
  longestNoWriteMs: number;
  longestNoWriteAtMs: number;
  lastSeq: number;
  /** The largest steps of the leader timestamps between consecutive ledger entries. */
  ledgerTs: { maxForwardMs: number; maxBackwardMs: number };
  /**
   * Raft snapshot settings drawn for the run (small, so that members restarted or cut off catch
   * up from a snapshot), and how often members installed one or read one back from disk.
   */
  snapshots: { every: number; keep: number; installed: number; readBack: number };
  nemesis: NemesisEvent[];
  dataDir?: string;
  error?: string;
}

interface LedgerOpJson {
  op: string;
  table?: string;
  values?: Record<string, unknown>;
  key?: Record<string, unknown>;
}
interface LedgerEntryJson {
  seq: number;
  ts: number;
  family: string | null;
  ops: LedgerOpJson[];
}

async function readLedger(url: string): Promise<LedgerEntryJson[]> {
  const entries: LedgerEntryJson[] = [];
  let after = 0;
  for (;;) {
    const res = await call(url, "GET", `/v1/ledger?after=${after}&limit=1000`, {
      timeoutMs: 10_000,
    });
    if (res.status !== 200) throw new Error(`GET /v1/ledger from ${url}: ${res.status}`);
    if (res.json.entries.length === 0) return entries;
    entries.push(...res.json.entries);
    after = res.json.entries.at(-1).seq;
  }
}

/** Rows of the `fault.regs` table of a SoR or LDB: key -> value. */
function kvRows(path: string): Map<string, string> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const rows = db.prepare(`SELECT k, v FROM ${FAMILY}___${TABLE}`).all() as {
      k: string;
      v: string;
    }[];
    return new Map(rows.map((r) => [r.k, r.v]));
  } finally {
    db.close();
  }
}

/** The longest gap between successful writes within [0, endMs]. */
export function longestGap(okEnds: number[], endMs: number): { gapMs: number; atMs: number } {
  const times = [0, ...[...okEnds].sort((a, b) => a - b), endMs];
  let gapMs = 0;
  let atMs = 0;
  for (let i = 1; i < times.length; i++) {
    if (times[i] - times[i - 1] > gapMs) [gapMs, atMs] = [times[i] - times[i - 1], times[i - 1]];
  }
  return { gapMs: Math.round(gapMs), atMs: Math.round(atMs) };
}

/** The defaults of a schedule drawn from a seed: kind and size vary with it. */
export function scheduleFromSeed(
  seed: number,
  over: Partial<ScheduleOptions> = {},
): ScheduleOptions {
  const dice = new Dice(rng(seed ^ 0x5eed));
  const kinds: ScheduleKind[] = [...FAULT_KINDS, "mixed"];
  return {
    seed,
    kind: dice.pick(kinds),
    size: dice.chance(0.5) ? 3 : 5,
    durationMs: 20_000,
    ...over,
  };
}

/** Runs one schedule and checks it; never throws (a harness failure is in `error`). */
export async function runSchedule(o: ScheduleOptions): Promise<ScheduleReport> {
  const log = o.log ?? (() => {});
  const wallStart = performance.now();
  const dice = new Dice(rng(o.seed));
  const keys = Array.from({ length: o.keys ?? (o.size === 3 ? 6 : 8) }, (_, i) => `key${i}`);
  const dir = await Deno.makeTempDir({ prefix: `ctl-fault-${o.seed}-`, dir: o.tmpDir });
  const report: ScheduleReport = {
    seed: o.seed,
    kind: o.kind,
    size: o.size,
    durationMs: o.durationMs,
    wallMs: 0,
    ops: { total: 0, byF: {}, requests: 0, statuses: {}, unexpected: [] },
    verdict: "unknown",
    checkerMs: 0,
    checks: [],
    ok: false,
    longestNoWriteMs: 0,
    longestNoWriteAtMs: 0,
    lastSeq: 0,
    ledgerTs: { maxForwardMs: 0, maxBackwardMs: 0 },
    // A dice of their own, so that the rest of a seed's schedule is as it was.
    snapshots: (() => {
      const d = new Dice(rng(o.seed ^ 0x5a4b));
      return { every: d.int(300, 1500), keep: d.int(20, 300), installed: 0, readBack: 0 };
    })(),
    nemesis: [],
  };
  await ensurePackages();
  const ids = Array.from({ length: o.size }, (_, i) => `e${i + 1}`);
  let cluster: FaultCluster | null = null;
  let workload: Workload | null = null;
  const reflectors: CtlProcess[] = [];
  try {
    cluster = await FaultCluster.create({
      size: o.size,
      dir,
      main: o.main,
      fakeClock: o.kind === "clock" || o.kind === "mixed" ? ids : undefined,
      smallDisk: o.kind === "disk" || o.kind === "mixed" ? { ids, sizeMb: 48 } : undefined,
      delayProxy: o.kind === "latency" || o.kind === "mixed",
      extraArgs: [
        "--snapshot-entries",
        String(report.snapshots.every),
        "--compact-keep",
        String(report.snapshots.keep),
      ],
    });
    cluster.start();
    const leader = await cluster.leader(30_000);
    log(
      `cluster of ${o.size} up, leader ${leader.id}, snapshots every ~${report.snapshots.every} ` +
        `entries keeping ${report.snapshots.keep}`,
    );
    await setUpSchema(leader.url, keys);
    for (const name of ["r1", "r2"]) {
      const r = reflector(dir, name, dice.shuffle(cluster.urls));
      r.start();
      reflectors.push(r);
    }

    const w = new Workload({
      urls: cluster.urls,
      keys,
      clients: o.clients ?? (o.size === 3 ? 6 : 8),
      rand: rng(o.seed * 31 + 7),
      requestTimeoutMs: 2000,
      opDeadlineMs: 6000,
      thinkMs: 30,
    });
    workload = w;
    const nemesis = new Nemesis(cluster, dice, () => w.now());
    w.start();
    log(`clients running; nemesis ${o.kind} for ${o.durationMs} ms`);
    await nemesis.run(o.kind, o.durationMs);
    report.nemesis = nemesis.events;
    // Everything healed: the cluster must serve again, and the clients finish their retries.
    const healedAt = w.now();
    const newLeader = await cluster.leader(30_000);
    await sleep(1000);
    await w.stop();
    const clientsEnd = w.now();
    log(`healed at ${Math.round(healedAt)} ms; leader ${newLeader.id}; clients stopped`);

    // Late retries: acknowledged mutations sent again with their Idempotency-Key must answer
    // their first seq and apply nothing (the ledger check below sees any second copy).
    const acked = w.ops.filter((r) => r.f !== "read" && r.outcome === "ok");
    const retry = [...acked.slice(0, 3), ...dice.shuffle(acked.slice(3)).slice(0, 7)];
    const lateBad: string[] = [];
    for (const rec of retry) {
      let res = { status: 0, text: "" };
      for (let attempt = 0; attempt < 20; attempt++) {
        res = await w.send(rec, dice.pick(cluster.urls));
        if (![0, 502, 503, 504].includes(res.status)) break;
        await sleep(200);
      }
      const seq = res.status === 200 ? JSON.parse(res.text).seq : undefined;
      if (seq !== rec.seq) {
        lateBad.push(
          `${rec.value}: first seq ${rec.seq}, retry ${res.status} ${res.text.slice(0, 120)}`,
        );
      }
    }
    report.checks.push({
      name: "late retries answer the first seq",
      ok: lateBad.length === 0,
      detail: lateBad.length === 0
        ? `${retry.length} acknowledged mutations sent again: same seq each`
        : lateBad.slice(0, 5).join("; "),
    });

    // A final linearizable read of every key, retried until it answers.
    const finalValue = new Map<string, string | null>();
    let process = 1_000_000;
    for (const key of keys) {
      await waitFor(
        `a final read of ${key}`,
        async () => {
          const rec = await w.read(process++, key);
          if (rec.outcome !== "ok") return false;
          finalValue.set(key, rec.value ?? null);
          return true;
        },
        30_000,
        200,
      );
    }

    // Checks on the ledger and the copies.
    const entries = await readLedger(newLeader.url);
    const lastSeq = entries.at(-1)?.seq ?? 0;
    report.lastSeq = lastSeq;
    // Every member and reflector must reach the leader's last seq; one that does not is an
    // anomaly (a diverged or stuck copy), and the checks below still run.
    const behind: string[] = [];
    const deadline = Date.now() + 30_000;
    const reached = async (what: string, seq: () => Promise<number> | number) => {
      try {
        await waitFor(
          `${what} to reach seq ${lastSeq}`,
          async () => (await seq()) >= lastSeq,
          Math.max(1000, deadline - Date.now()),
        );
      } catch {
        behind.push(`${what} at ${await seq()}`);
      }
    };
    for (const m of cluster.members) {
      await reached(m.id, async () => (await cluster!.status(m.id))?.lastSeq ?? -1);
    }
    for (const name of ["r1", "r2"]) await reached(name, () => ldbSeq(`${dir}/${name}/ldb.db`));
    // Members commit applied batches to their SoR file a few ms after applying them: wait for
    // the files (read below from other connections) to hold the last seq too.
    for (const m of cluster.members) {
      await reached(`${m.id}'s SoR file`, () => sorFileSeq(`${m.dataDir}/sor.db`));
    }
    report.checks.push({
      name: "every member and reflector reaches the last seq",
      ok: behind.length === 0,
      detail: behind.length === 0
        ? `${cluster.members.length} members and 2 reflectors at seq ${lastSeq}`
        : `behind seq ${lastSeq}: ${behind.join(", ")}`,
    });
    if (o.historyFile) await Deno.writeTextFile(o.historyFile, w.recorder.toJsonLines());
    checkEverything(report, w, entries, cluster, dir, keys, finalValue, clientsEnd);
    log(`checks done: ${report.ok ? "ok" : "ANOMALY"}`);
  } catch (e) {
    report.error = e instanceof Error ? `${e.message}` : String(e);
    report.ok = false;
  } finally {
    await workload?.stop();
    for (const r of reflectors) await r.kill("SIGKILL");
    if (cluster) {
      for (const m of cluster.members) {
        const text = await Deno.readTextFile(m.process.logFile).catch(() => "");
        report.snapshots.installed += text.split("installed snapshot").length - 1;
        report.snapshots.readBack += text.split("read snapshot").length - 1;
      }
      await cluster.destroy();
    }
    if (report.ok && !o.keepData) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    } else {
      report.dataDir = dir;
    }
    report.wallMs = Math.round(performance.now() - wallStart);
  }
  return report;
}

function checkEverything(
  report: ScheduleReport,
  workload: Workload,
  entries: LedgerEntryJson[],
  cluster: FaultCluster,
  dir: string,
  keys: string[],
  finalValue: Map<string, string | null>,
  clientsEnd: number,
): void {
  const checks = report.checks;
  const ops = workload.ops;
  summarizeOps(report, ops);

  // 1. Linearizability, per key.
  const result = checkEvents(kvModel, workload.recorder.events, { timeoutMs: 60_000 });
  report.verdict = result.verdict;
  report.checkerMs = Math.round(result.elapsedMs);
  if (result.verdict !== "linearizable") {
    report.explanation = formatCheckResult(result, kvModel);
  }
  checks.push({
    name: "linearizable (register + cas per key)",
    ok: result.verdict === "linearizable",
    detail: `${result.verdict}; ${result.partitionSizes.length} keys, ` +
      `${result.partitionSizes.reduce((a, b) => a + b, 0)} operations, ${result.steps} steps, ` +
      `${report.checkerMs} ms`,
  });

  // Which ledger entries name each operation (by its unique value in table ops).
  const seen = new Map<string, number[]>();
  for (const e of entries) {
    for (const op of e.ops) {
      if (op.op === "upsert" && op.table === OPS_TABLE && typeof op.values?.id === "string") {
        const list = seen.get(op.values.id) ?? [];
        list.push(e.seq);
        seen.set(op.values.id, list);
      }
    }
  }
  const mutations = ops.filter((r) => r.f !== "read");

  // 2. No acknowledged write lost.
  const lost = mutations.filter((r) =>
    r.outcome === "ok" && !(seen.get(r.value!) ?? []).includes(r.seq!)
  );
  checks.push({
    name: "no acknowledged write lost",
    ok: lost.length === 0,
    detail: lost.length === 0
      ? `${
        mutations.filter((r) => r.outcome === "ok").length
      } acknowledged writes, all in the ledger at their seq`
      : `${lost.length} lost, e.g. ${
        lost.slice(0, 5).map((r) => `${r.value}@${r.seq} (ledger: ${seen.get(r.value!) ?? "none"})`)
          .join(", ")
      }`,
  });

  // 3. Idempotent retries applied once; failed cas never applied.
  const dups = [...seen].filter(([, seqs]) => seqs.length > 1);
  const retried = mutations.filter((r) => r.attempts > 1).length;
  checks.push({
    name: "idempotent retries applied once",
    ok: dups.length === 0,
    detail: dups.length === 0
      ? `${retried} operations retried; none applied twice`
      : `${dups.length} applied more than once, e.g. ${
        dups.slice(0, 5).map(([v, s]) => `${v} at seqs ${s.join(",")}`).join("; ")
      }`,
  });
  const failedApplied = mutations.filter((r) => r.outcome === "fail" && seen.has(r.value!));
  checks.push({
    name: "failed compare-and-set never applied",
    ok: failedApplied.length === 0,
    detail: failedApplied.length === 0
      ? `${
        mutations.filter((r) => r.outcome === "fail").length
      } definite cas failures, none in the ledger`
      : `${failedApplied.length} applied, e.g. ${failedApplied.slice(0, 5).map((r) => r.value)}`,
  });

  // 4. Gapless ledger.
  const gaps: string[] = [];
  entries.forEach((e, i) => {
    if (e.seq !== i + 1) gaps.push(`position ${i + 1} holds seq ${e.seq}`);
  });
  checks.push({
    name: "ledger gapless",
    ok: gaps.length === 0,
    detail: gaps.length === 0 ? `seq 1..${entries.length}` : gaps.slice(0, 5).join("; "),
  });

  // 5. Copies agree.
  const reference = cluster.members.map((m) => JSON.stringify(checksumsOf(`${m.dataDir}/sor.db`)));
  const ldbs = ["r1", "r2"].map((r) => JSON.stringify(checksumsOf(`${dir}/${r}/ldb.db`)));
  const differing = [
    ...reference.map((c, i) => [cluster.members[i].id, c] as const),
    ...ldbs.map((c, i) => [`r${i + 1}`, c] as const),
  ].filter(([, c]) => c !== reference[0]).map(([id]) => id);
  checks.push({
    name: "SoRs and reflector LDBs equal (checksums)",
    ok: differing.length === 0,
    detail: differing.length === 0
      ? `${cluster.members.length} SoRs and 2 LDBs identical`
      : `differ from ${cluster.members[0].id}: ${differing.join(", ")}`,
  });

  // 6. Each key's row agrees with its cookie.
  const rows = kvRows(`${cluster.members[0].dataDir}/sor.db`);
  const mismatched = keys.filter((k) => {
    const cookie = finalValue.get(k) ?? null;
    const row = rows.get(k);
    if (cookie === null || cookie.startsWith("del:")) return row !== undefined;
    return row !== cookie;
  });
  checks.push({
    name: "rows agree with cookies",
    ok: mismatched.length === 0,
    detail: mismatched.length === 0
      ? `${keys.length} keys`
      : mismatched.map((k) => `${k}: cookie ${finalValue.get(k)} row ${rows.get(k)}`).join("; "),
  });

  for (let i = 1; i < entries.length; i++) {
    const step = entries[i].ts - entries[i - 1].ts;
    report.ledgerTs.maxForwardMs = Math.max(report.ledgerTs.maxForwardMs, step);
    report.ledgerTs.maxBackwardMs = Math.max(report.ledgerTs.maxBackwardMs, -step);
  }

  const okEnds = mutations.filter((r) => r.outcome === "ok").map((r) => r.end);
  const gap = longestGap(okEnds, clientsEnd);
  report.longestNoWriteMs = gap.gapMs;
  report.longestNoWriteAtMs = gap.atMs;
  report.ok = checks.every((c) => c.ok);
}

function summarizeOps(report: ScheduleReport, ops: OpRecord[]): void {
  const s = report.ops;
  s.total = ops.length;
  for (const r of ops) {
    const f = (s.byF[r.f] ??= { ok: 0, fail: 0, info: 0 });
    f[r.outcome]++;
    s.requests += r.attempts;
    for (const st of r.statuses) s.statuses[String(st)] = (s.statuses[String(st)] ?? 0) + 1;
    if (r.unexpected && s.unexpected.length < 20) {
      s.unexpected.push(`${r.f} ${r.key}: ${r.unexpected.slice(0, 300)}`);
    }
  }
}

/** A readable summary of one report. */
export function formatReport(r: ScheduleReport): string {
  const lines: string[] = [];
  lines.push(
    `schedule seed=${r.seed} kind=${r.kind} executives=${r.size} nemesis=${r.durationMs}ms ` +
      `wall=${(r.wallMs / 1000).toFixed(1)}s: ${
        r.ok ? "OK" : r.checks.some((c) => !c.ok) ? "ANOMALY" : "ERROR (could not finish)"
      }`,
  );
  if (r.error) lines.push(`  error: ${r.error}`);
  const f = Object.entries(r.ops.byF).map(([k, v]) => `${k} ${v.ok}/${v.fail}/${v.info}`).join(
    ", ",
  );
  lines.push(`  operations: ${r.ops.total} (ok/fail/unknown: ${f}); ${r.ops.requests} requests`);
  lines.push(
    `  statuses: ${
      Object.entries(r.ops.statuses).map(([k, v]) => `${k === "0" ? "conn-err" : k}×${v}`).join(
        " ",
      )
    }`,
  );
  lines.push(
    `  longest window without a successful write: ${r.longestNoWriteMs} ms (from ${r.longestNoWriteAtMs} ms)`,
  );
  lines.push(
    `  ledger: last seq ${r.lastSeq}; leader timestamps step up to +${r.ledgerTs.maxForwardMs} ms ` +
      `and back up to -${r.ledgerTs.maxBackwardMs} ms between entries`,
  );
  lines.push(`  verdict: ${r.verdict} (${r.checkerMs} ms)`);
  for (const c of r.checks) lines.push(`  [${c.ok ? "ok" : "FAIL"}] ${c.name}: ${c.detail}`);
  if (r.ops.unexpected.length) {
    lines.push(`  unexpected replies:`);
    for (const u of r.ops.unexpected.slice(0, 5)) lines.push(`    ${u}`);
  }
  if (r.explanation) {
    lines.push("  checker explanation:");
    for (const l of r.explanation.split("\n").slice(0, 40)) lines.push(`    ${l}`);
  }
  lines.push("  nemesis:");
  for (const e of r.nemesis) lines.push(`    ${e.atMs} ms ${e.action} ${e.kind}: ${e.detail}`);
  if (r.dataDir) lines.push(`  data (logs, SoRs, LDBs): ${r.dataDir}`);
  return lines.join("\n");
}
