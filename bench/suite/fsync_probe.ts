/**
 * What one durable append costs on this disk, the way ctl's segment log does it (append to a
 * growing file, then `syncData()` = fdatasync) against the way etcd's WAL does it (overwrite
 * inside a preallocated file, then fdatasync: no file-size change, so no metadata journal
 * commit). Each mode writes `--n` records of `--bytes` bytes, each followed by fdatasync.
 *
 * Then the same append while the next segment's file is zero-filled beside it, paced as ctl does
 * it and with one fsync at the end (`--fills` segments each).
 *
 *   deno run -A bench/suite/fsync_probe.ts [--n 500] [--bytes 200] [--fills 10] [--dir DIR]
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { quantile, sorted } from "./stats.ts";
import { zeroFillFile } from "../../src/raftnode/storage/segment_log.ts";

export interface ProbeResult {
  mode: string;
  p50Ms: number;
  p99Ms: number;
}

/** Writes at least `bytes` zeros at `f`'s position, a MiB at a time, then one fsync. */
async function writeZerosThenSync(f: Deno.FsFile, bytes: number): Promise<void> {
  const chunk = new Uint8Array(1 << 20);
  for (let written = 0; written < bytes; written += chunk.length) await f.write(chunk);
  await f.sync();
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
    await writeZerosThenSync(f, n * bytes + (1 << 20));
    await f.seek(0, Deno.SeekMode.Start);
  };
  await measure("overwrite a preallocated file + fdatasync", preallocate);
  // The same two with the blocking calls (writeSync + syncDataSync): no thread-pool hops.
  await measure("growing file, writeSync + syncDataSync", async () => {}, true);
  await measure("preallocated, writeSync + syncDataSync", preallocate, true);
  return results;
}

/**
 * A log append (200 bytes into a preallocated file, writeSync + syncDataSync, 1 ms apart) while
 * the next 16 MiB segment is zero-filled beside it, `fills` times: with ctl's paced zero-fill
 * (`zeroFillFile`: an fdatasync every MiB), and with one fsync at the end as before, when the
 * append queued behind all 16 MiB of writeback.
 */
export async function probeFsyncDuringZeroFill(
  dir: string,
  fills: number,
  bytes: number,
): Promise<(ProbeResult & { maxMs: number; n: number })[]> {
  const segmentBytes = 16 * 1024 * 1024;
  const record = new Uint8Array(bytes).fill(0x61);
  const oneFsyncAtTheEnd = async (path: string, n: number) => {
    const f = await Deno.open(path, { write: true, create: true, truncate: true });
    try {
      await writeZerosThenSync(f, n);
    } finally {
      f.close();
    }
  };
  const sparePath = join(dir, "probe-spare.bin");
  const results: (ProbeResult & { maxMs: number; n: number })[] = [];
  for (
    const [mode, fill] of [
      ["during a 16 MiB zero-fill, fdatasync every MiB (ctl)", zeroFillFile],
      ["during a 16 MiB zero-fill, one fsync at the end", oneFsyncAtTheEnd],
    ] as const
  ) {
    const logPath = join(dir, "probe-log.bin");
    const log = await Deno.open(logPath, { read: true, write: true, create: true, truncate: true });
    const times: number[] = [];
    try {
      await writeZerosThenSync(log, 1 << 20);
      let at = 0;
      for (let i = 0; i < fills; i++) {
        let done = false;
        const filling = fill(sparePath, segmentBytes).then(() => {
          done = true;
        });
        while (!done) {
          const t0 = performance.now();
          log.seekSync(at, Deno.SeekMode.Start);
          log.writeSync(record);
          log.syncDataSync();
          times.push(performance.now() - t0);
          at = (at + bytes) % (1 << 20);
          await new Promise((r) => setTimeout(r, 1));
        }
        await filling;
        // A roll-over renames the spare away, so each fill starts a new file, as here.
        await Deno.remove(sparePath);
      }
    } finally {
      log.close();
      await Deno.remove(logPath);
      await Deno.remove(sparePath).catch(() => {});
    }
    const s = sorted(times);
    results.push({
      mode,
      p50Ms: quantile(s, 0.5),
      p99Ms: quantile(s, 0.99),
      maxMs: s[s.length - 1],
      n: s.length,
    });
  }
  return results;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      n: { type: "string", default: "500" },
      bytes: { type: "string", default: "200" },
      fills: { type: "string", default: "10" },
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
    for (
      const r of await probeFsyncDuringZeroFill(dir, Number(values.fills), Number(values.bytes))
    ) {
      console.log(
        `${r.mode.padEnd(54)} p50 ${r.p50Ms.toFixed(3)} ms  p99 ${r.p99Ms.toFixed(3)} ms  ` +
          `max ${r.maxMs.toFixed(3)} ms`,
      );
    }
  } finally {
    if (!values.dir) Deno.removeSync(dir, { recursive: true });
  }
}
