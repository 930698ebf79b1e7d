/**
 * Reader library point reads: `getRowByKey` latency on a 10,000-row table (string + integer
 * key), random existing keys, after a warm-up. Prints p50/p99/p999 in µs and reads/s.
 * Target: p50 ≤ 5 µs.
 *
 *   deno run -A bench/ldb_reader_bench.ts [reads=200000]
 */
import { testLdb } from "./suite/local.ts";

const reads = Number(Deno.args[0] ?? 200_000);
const ROWS = 10_000;

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

// The same 10,000-row LDB as the suite's reader figure (bench/suite/local.ts).
const ldb = testLdb();

const keys = Array.from({ length: 4096 }, () => {
  const i = Math.floor(Math.random() * ROWS);
  return [`tenant-${i % 100}`, i] as const;
});

const { reader } = ldb;
for (let i = 0; i < 20_000; i++) reader.getRowByKey("bench", "flags", ...keys[i & 4095]);

const samples = new Float64Array(reads);
let found = 0;
const started = performance.now();
for (let i = 0; i < reads; i++) {
  const key = keys[i & 4095];
  const t0 = performance.now();
  const row = reader.getRowByKey("bench", "flags", key[0], key[1]);
  samples[i] = (performance.now() - t0) * 1000;
  if (row) found++;
}
const totalMs = performance.now() - started;
if (found !== reads) throw new Error(`expected every key found, found ${found} of ${reads}`);
samples.sort();
console.log(
  `getRowByKey: ${reads} reads of random keys over ${ROWS} rows (timer overhead included)`,
);
console.log(
  `p50 ${percentile(samples, 0.5).toFixed(2)} µs  p99 ${
    percentile(samples, 0.99).toFixed(2)
  } µs  ` +
    `p999 ${percentile(samples, 0.999).toFixed(2)} µs  ` +
    `throughput ${Math.round(reads / (totalMs / 1000)).toLocaleString("en")} reads/s`,
);
ldb.close();
