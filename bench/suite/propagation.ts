/**
 * Write-to-LDB propagation: writes paced at `ratePerSecond` (open loop) go to the leader; one
 * worker thread per reflector watches that reflector's LDB through the reader library
 * (`lastSeq()` every ~0.2 ms). For each acknowledged write, lag = when the LDB first held its seq
 * − when the ack was read by the client (0 when the row was visible before the ack arrived).
 * Two reflectors run side by side: one streaming from the leader, one from a follower (which
 * applies an entry only after the leader told it the entry committed). Target: p99 ≤ 25 ms.
 */
import { FetchPoster } from "./http1.ts";
import { httpClient, sleep } from "./load.ts";
import { type CtlSystem, ctlWriteErrors, ctlWriteSeq } from "./systems.ts";
import { quantile, type Result, sorted } from "./stats.ts";
import { waitFor } from "../../tests/system/harness.ts";
import { openLdb } from "../../mod.ts";

const nowMs = () => performance.timeOrigin + performance.now();

/** A reflector's LDB to watch. */
export interface WatchedLdb {
  /** e.g. "reflector on the leader's stream". */
  label: string;
  path: string;
}

/** Watches `path` on a worker thread; `stop()` ends it and returns what it saw. */
async function watch(path: string) {
  const stop = new SharedArrayBuffer(4);
  const seen: { seq: number; atMs: number }[] = [];
  const worker = new Worker(new URL("./ldb_watch_worker.ts", import.meta.url), { type: "module" });
  const ready = Promise.withResolvers<void>();
  const done = Promise.withResolvers<void>();
  worker.onmessage = (e) => {
    if (e.data.ready) ready.resolve();
    else if (e.data.done) done.resolve();
    else seen.push(e.data);
  };
  worker.postMessage({ path, stop });
  await ready.promise;
  return {
    seen,
    async stop() {
      Atomics.store(new Int32Array(stop), 0, 1);
      Atomics.notify(new Int32Array(stop), 0);
      await done.promise;
      worker.terminate();
    },
  };
}

async function caughtUp(path: string, seq: number): Promise<void> {
  await waitFor(`the LDB ${path} to reach seq ${seq}`, () => {
    try {
      const r = openLdb(path);
      try {
        return r.lastSeq() >= seq;
      } finally {
        r.close();
      }
    } catch {
      return false;
    }
  }, 60_000);
}

export async function benchPropagation(
  ctl: CtlSystem,
  ldbs: WatchedLdb[],
  o: { durationMs: number; warmupMs: number; ratePerSecond: number; log: (s: string) => void },
): Promise<Result[]> {
  const leader = await ctl.leaderUrl();
  const client = httpClient(64);
  const poster = new FetchPoster(client); // up to 64 at once
  // The reflectors must be caught up before the clock starts.
  const seq0 = await ctlWriteSeq(poster, leader, 1, 0);
  if (seq0 === undefined) throw new Error("propagation: the first write failed");
  for (const l of ldbs) await caughtUp(l.path, seq0);
  const watchers = await Promise.all(ldbs.map((l) => watch(l.path)));

  const acks: { seq: number; ackMs: number; counted: boolean }[] = [];
  let failed = 0;
  let inflight = 0;
  let issued = 0;
  const started = performance.now();
  const countFrom = started + o.warmupMs;
  const end = countFrom + o.durationMs;
  const pending: Promise<void>[] = [];
  while (performance.now() < end) {
    const due = Math.floor((performance.now() - started) * o.ratePerSecond / 1000);
    while (issued < due && inflight < 64) {
      const i = issued++;
      const counted = performance.now() >= countFrom;
      inflight++;
      pending.push(
        ctlWriteSeq(poster, leader, 1, i).then((seq) => {
          const ackMs = nowMs();
          if (seq === undefined) failed++;
          else acks.push({ seq, ackMs, counted });
        }, (e) => {
          ctlWriteErrors.last = String(e);
          failed++;
        }).finally(() => inflight--),
      );
    }
    await sleep(1);
  }
  await Promise.all(pending);
  client.close();
  const lastSeq = Math.max(0, ...acks.map((a) => a.seq));
  const deadline = performance.now() + 10_000;
  while (
    performance.now() < deadline && watchers.some((w) => (w.seen.at(-1)?.seq ?? 0) < lastSeq)
  ) await sleep(5);
  for (const w of watchers) await w.stop();

  if (failed > 0) o.log(`  propagation: ${failed} writes failed; last: ${ctlWriteErrors.last}`);
  // A reflector is labelled by the role of the member it streams from when it started.
  const leaderAfter = await ctl.leaderUrl();
  const moved = leaderAfter === leader
    ? ""
    : `; the leadership moved from ${leader} to ${leaderAfter} during the run`;
  if (moved) o.log(`  propagation${moved}`);
  const counted = acks.filter((x) => x.counted);
  const achieved = counted.length / (o.durationMs / 1000);
  return ldbs.map((l, k) => {
    const seen = watchers[k].seen;
    const lags: number[] = [];
    const worst: { lagMs: number; ackedAt: string }[] = [];
    let early = 0;
    let missing = 0;
    for (const a of counted) {
      // The first observation whose seq covers this write.
      let lo = 0;
      let hi = seen.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (seen[mid].seq >= a.seq) hi = mid;
        else lo = mid + 1;
      }
      if (lo === seen.length) {
        missing++;
        continue;
      }
      const lag = seen[lo].atMs - a.ackMs;
      if (lag < 0) early++;
      lags.push(Math.max(0, lag));
      if (lag > 25) {
        worst.push({ lagMs: Math.round(lag), ackedAt: new Date(a.ackMs).toISOString() });
      }
    }
    const s = sorted(lags);
    o.log(
      `  propagation at ${o.ratePerSecond}/s (${l.label}): ${s.length} writes at ${
        Math.round(achieved)
      }/s, ${early} ` +
        `visible before their ack, ${missing} never seen, ${failed} failed; p50 ` +
        `${quantile(s, 0.5).toFixed(1)} ms, p99 ${quantile(s, 0.99).toFixed(1)} ms`,
    );
    return {
      bench: "propagation",
      name: `write ack → row in the LDB at ${o.ratePerSecond}/s, ${l.label}`,
      unit: "ms",
      median: quantile(s, 0.5),
      p99: quantile(s, 0.99),
      n: s.length,
      target: { kind: "max", value: 25, on: "p99", text: "p99 ≤ 25 ms" },
      note: `${Math.round(achieved)} writes/s paced to the leader; ${early} rows were visible ` +
        `before their ack (counted as 0)${missing ? `; ${missing} never seen` : ""}` +
        `${failed ? `; ${failed} failed writes` : ""}${moved}`,
      detail: {
        p999: quantile(s, 0.999),
        max: s.at(-1),
        early,
        missing,
        failed,
        over25Ms: worst.length,
        // When the slow ones happened, to line up with executive logs (snapshots, elections).
        worst: worst.sort((x, y) => y.lagMs - x.lagMs).slice(0, 10),
      },
    } satisfies Result;
  });
}
