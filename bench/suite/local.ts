/**
 * Figures that need no cluster: reader-library point reads, and sidecar throughput (a real
 * `ctl sidecar` process), both over a 10,000-row test LDB built with the reflector's writer
 * (the same data as bench/ldb_reader_bench.ts and bench/sidecar_bench.ts).
 */
import { join } from "node:path";
import { createTestLdb, type LdbReader, openLdb, type TestLdb } from "../../mod.ts";
import { CtlProcess, freePorts, waitFor } from "../../tests/system/harness.ts";
import { type ClientKind, runLoad } from "./load.ts";
import { median, quantile, type Result } from "./stats.ts";

const ROWS = 10_000;

export function testLdb(): TestLdb {
  return createTestLdb([{
    family: "bench",
    table: "flags",
    fields: [["tenant", "string"], ["id", "integer"], ["enabled", "integer"], ["config", "text"]],
    keyFields: ["tenant", "id"],
    rows: Array.from({ length: ROWS }, (_, i) => ({
      tenant: `tenant-${i % 100}`,
      id: i,
      enabled: i % 2,
      config: `{"limit":${i},"region":"eu-west-1"}`,
    })),
  }]);
}

const randomKey = () => {
  const i = Math.floor(Math.random() * ROWS);
  return [`tenant-${i % 100}`, i] as const;
};

/**
 * `getRowByKey` of random existing keys: each read timed alone, plus batches of 1,000. Twice: with
 * the default reader (reads within 1 ms share one SQLite read transaction, so most skip the WAL
 * read-lock system calls) and with `snapshotMs: 0` (every read its own transaction).
 */
export function benchReader(o: { reads: number; runs: number }): Result[] {
  const ldb = testLdb();
  const fresh = openLdb(ldb.path, { snapshotMs: 0 });
  try {
    const keys = Array.from({ length: 4096 }, randomKey);
    return [
      pointReads(ldb.reader, keys, o, {
        name: "reader library getRowByKey (point read)",
        target: { kind: "max", value: 5, on: "median", text: "p50 ≤ 5 µs" },
        what: "default reader: reads within 1 ms share a snapshot",
      }),
      pointReads(fresh, keys, o, {
        name: "reader library getRowByKey, openLdb(path, { snapshotMs: 0 })",
        what: "each read its own read transaction",
      }),
    ];
  } finally {
    fresh.close();
    ldb.close();
  }
}

function pointReads(
  reader: LdbReader,
  keys: readonly (readonly [string, number])[],
  o: { reads: number; runs: number },
  about: { name: string; target?: Result["target"]; what: string },
): Result {
  for (let i = 0; i < 20_000; i++) reader.getRowByKey("bench", "flags", ...keys[i & 4095]);
  const samples = new Float64Array(o.reads * o.runs);
  const batchMeansUs: number[] = [];
  let found = 0;
  let n = 0;
  for (let run = 0; run < o.runs; run++) {
    for (let i = 0; i < o.reads; i++) {
      const key = keys[i & 4095];
      const t0 = performance.now();
      const row = reader.getRowByKey("bench", "flags", key[0], key[1]);
      samples[n++] = (performance.now() - t0) * 1000;
      if (row) found++;
    }
    // Batches: no timer inside the loop, so no timer overhead in the mean.
    for (let b = 0; b < o.reads / 1000; b++) {
      const t0 = performance.now();
      for (let i = 0; i < 1000; i++) {
        const key = keys[(b * 1000 + i) & 4095];
        if (reader.getRowByKey("bench", "flags", key[0], key[1])) found++;
      }
      batchMeansUs.push(performance.now() - t0); // ms per 1,000 = µs per read
    }
  }
  samples.sort();
  return {
    bench: "reader",
    name: about.name,
    unit: "µs",
    median: quantile(samples, 0.5),
    p99: quantile(samples, 0.99),
    n: samples.length,
    ...(about.target ? { target: about.target } : {}),
    note: `${ROWS} rows, 2-field key, ${about.what}, each read timed alone (timer included); ` +
      `mean of untimed batches ${median(batchMeansUs).toFixed(2)} µs`,
    detail: {
      p999: quantile(samples, 0.999),
      batchMeanUs: median(batchMeansUs),
      found,
      readsPerSecond: 1e6 / median(batchMeansUs),
    },
  };
}

/** `ctl sidecar` over the test LDB; 32 keep-alive clients POST /get-row-by-key. */
export async function benchSidecar(
  dir: string,
  o: {
    durationMs: number;
    warmupMs: number;
    runs: number;
    log: (s: string) => void;
    client?: ClientKind;
  },
): Promise<Result[]> {
  const ldb = testLdb();
  const [port] = freePorts(1);
  const proc = new CtlProcess("sidecar", [
    "sidecar",
    "--ldb",
    ldb.path,
    "--listen",
    `127.0.0.1:${port}`,
  ], join(dir, "sidecar.log"));
  try {
    proc.start();
    const base = `http://127.0.0.1:${port}`;
    await waitFor("the sidecar to answer /ping", async () => {
      const res = await fetch(`${base}/ping`, { signal: AbortSignal.timeout(500) });
      await res.arrayBuffer();
      return res.ok;
    }, 30_000);
    const url = `${base}/get-row-by-key/bench/flags`;
    const bodies = Array.from({ length: 1024 }, () => {
      const [t, i] = randomKey();
      return JSON.stringify({ key: [{ value: t }, { value: i }] });
    });
    const perSecond: number[] = [];
    const latencies: number[] = [];
    for (let run = 0; run < o.runs; run++) {
      const r = await runLoad(async (poster, w, i) => {
        const res = await poster.post(
          url,
          { "content-type": "application/json" },
          bodies[(w * 31 + i) & 1023],
        );
        return res.status === 200;
      }, { concurrency: 32, durationMs: o.durationMs, warmupMs: o.warmupMs, client: o.client });
      o.log(`  sidecar run ${run + 1}: ${Math.round(r.perSecond)} req/s, ${r.failed} failed`);
      perSecond.push(r.perSecond);
      for (const x of r.latenciesMs) latencies.push(x);
    }
    latencies.sort((a, b) => a - b);
    return [{
      bench: "sidecar",
      name: "sidecar POST /get-row-by-key, 32 clients",
      unit: "req/s",
      median: median(perSecond),
      p99: NaN,
      n: perSecond.length,
      target: { kind: "min", value: 15_000, on: "median", text: "≥ 15,000 (sidecar_bench)" },
      note: `median of ${perSecond.length} runs; client on the same 2 cores`,
      detail: { runs: perSecond },
    }, {
      bench: "sidecar",
      name: "sidecar request latency, 32 clients",
      unit: "ms",
      median: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      n: latencies.length,
    }];
  } finally {
    await proc.kill("SIGTERM");
    ldb.close();
  }
}
