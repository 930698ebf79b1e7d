/**
 * What one durable append costs on this disk, the way ctl's segment log does it (append to a
 * growing file, then `syncData()` = fdatasync) against the way etcd's WAL does it (overwrite
 * inside a preallocated file, then fdatasync: no file-size change, so no metadata journal
 * commit). Each mode writes `--n` records of `--bytes` bytes, each followed by fdatasync.
 *
 *   deno run -A bench/suite/fsync_probe.ts [--n 500] [--bytes 200] [--dir DIR]
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { quantile, sorted } from "./stats.ts";

export interface ProbeResult {
  mode: string;
  p50Ms: number;
  p99Ms: number;
}

export async function probeFsync(dir: string, n: number, bytes: number): Promise<ProbeResult[]> {
  const record = new Uint8Array(bytes).fill(0x61);
  const results: ProbeResult[] = [];
  const measure = async (
    mode: string,
    prepare: (f: Deno.FsFile) => Promise<void>,
    blocking = false,
  ) => {
    const path = join(dir, `probe-${mode.replace(/\W+/g, "-")}.bin`);
    const f = await Deno.open(path, { read: true, write: true, create: true, truncate: true });
    try {
      await prepare(f);
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        if (blocking) {
          f.writeSync(record);
          f.syncDataSync();
        } else {
          await f.write(record);
          await f.syncData();
        }
        times.push(performance.now() - t0);
      }
      const s = sorted(times);
      results.push({ mode, p50Ms: quantile(s, 0.5), p99Ms: quantile(s, 0.99) });
    } finally {
      f.close();
      await Deno.remove(path);
    }
  };
  // ctl today: the file grows with every append.
  await measure("append to a growing file + fdatasync", async () => {});
  // etcd's WAL: the segment is preallocated (written once, synced), appends overwrite it.
  const preallocate = async (f: Deno.FsFile) => {
    const chunk = new Uint8Array(1 << 20);
    for (let written = 0; written < n * bytes + (1 << 20); written += chunk.length) {
      await f.write(chunk);
    }
    await f.sync();
    await f.seek(0, Deno.SeekMode.Start);
  };
  await measure("overwrite a preallocated file + fdatasync", preallocate);
  // The same two with the blocking calls (writeSync + syncDataSync): no thread-pool hops.
  await measure("growing file, writeSync + syncDataSync", async () => {}, true);
  await measure("preallocated, writeSync + syncDataSync", preallocate, true);
  return results;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      n: { type: "string", default: "500" },
      bytes: { type: "string", default: "200" },
      dir: { type: "string" },
    },
  });
  const dir = values.dir ?? Deno.makeTempDirSync({ prefix: "ctl-fsync-probe-" });
  try {
    for (const r of await probeFsync(dir, Number(values.n), Number(values.bytes))) {
      console.log(
        `${r.mode.padEnd(44)} p50 ${r.p50Ms.toFixed(3)} ms  p99 ${r.p99Ms.toFixed(3)} ms`,
      );
    }
  } finally {
    if (!values.dir) Deno.removeSync(dir, { recursive: true });
  }
}
