/**
 * Log store benchmark: appends of batches of 100-byte entries, each append fsynced.
 * Prints p50/p99 append latency and entries/s per store and batch size.
 *
 *   deno run -A bench/raftnode_storage_bench.ts [appendsPerCase=300]
 */

import type { Entry } from "../raft/types.ts";
import { SegmentLog } from "../src/raftnode/storage/segment_log.ts";
import { SqliteLog } from "../src/raftnode/storage/sqlite_log.ts";
import type { LogStore } from "../src/raftnode/storage/types.ts";

const appendsPerCase = Number(Deno.args[0] ?? 300);
const batchSizes = [1, 10, 100];
const stores: { name: string; open: (dir: string) => Promise<LogStore> }[] = [
  { name: "segment", open: (dir) => SegmentLog.open(dir) },
  { name: "sqlite", open: (dir) => SqliteLog.open(dir) },
];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

console.log(`appends per case: ${appendsPerCase}, entry size: 100 bytes, fsync on every append`);
console.log("store    batch  p50_ms  p99_ms  entries/s");
for (const store of stores) {
  for (const batch of batchSizes) {
    const dir = await Deno.makeTempDir({ prefix: "ctl-storage-bench-" });
    const log = await store.open(dir);
    await log.load();
    const latenciesMs: number[] = [];
    let index = 1;
    const started = performance.now();
    for (let i = 0; i < appendsPerCase; i++) {
      const entries: Entry[] = [];
      for (let j = 0; j < batch; j++) {
        entries.push({ index: index++, term: 1, type: "normal", data: new Uint8Array(100) });
      }
      const t0 = performance.now();
      await log.append(entries, { term: 1, vote: "a", commit: index - 1 });
      latenciesMs.push(performance.now() - t0);
    }
    const elapsedS = (performance.now() - started) / 1000;
    await log.close();
    await Deno.remove(dir, { recursive: true });
    latenciesMs.sort((a, b) => a - b);
    console.log(
      `${store.name.padEnd(8)} ${String(batch).padStart(5)}  ${
        percentile(latenciesMs, 0.5).toFixed(3).padStart(6)
      }  ${percentile(latenciesMs, 0.99).toFixed(3).padStart(6)}  ${
        Math.round((appendsPerCase * batch) / elapsedS).toString().padStart(9)
      }`,
    );
  }
}
