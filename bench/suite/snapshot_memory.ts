/**
 * What a large system of record costs each executive in memory: starts 3 executives, writes
 * 100-row batches for `--seconds` (the SoR grows by its ledger), waits for every member to take a
 * Raft snapshot, then samples each member's resident memory (VmRSS) every 5 s for `--watch`
 * seconds, and each one's peak; then restarts every member (kill -9) and prints its memory and
 * peak once a leader is back. Prints the SoR and snapshot file sizes beside the samples.
 *
 *   deno run -A bench/suite/snapshot_memory.ts [--seconds 20] [--watch 45] [--clients 16]
 *
 * With `KEEP=1` in the environment the cluster's directory is kept and its path printed.
 *
 * An executive builds its snapshot files from a copy of the SoR on disk and reads one into memory
 * only while a follower needs it (for `RaftNodeOptions.snapshotKeepMs`, 30 s, after the last), so
 * neither the samples nor the peak should carry a copy of the state.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { sleep, waitFor } from "../../tests/system/harness.ts";
import { RawPoster } from "./http1.ts";
import { metricSum } from "./prom.ts";
import { CtlSystem } from "./systems.ts";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    watch: { type: "string", default: "45" },
    clients: { type: "string", default: "16" },
  },
});

/** Resident memory of a process in MB, now (VmRSS) or at its peak (VmHWM), from /proc. */
function residentMb(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** Bytes of the files under `dir` (at any depth) whose names match `pattern`. */
function filesMb(dir: string, pattern: RegExp): number {
  let bytes = 0;
  for (const e of Deno.readDirSync(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) bytes += filesMb(path, pattern) * 1024 * 1024;
    else if (e.isFile && pattern.test(e.name)) bytes += Deno.statSync(path).size;
  }
  return bytes / 1024 / 1024;
}

async function metric(url: string, name: string): Promise<number> {
  return metricSum(await (await fetch(`${url}/metrics`)).text(), name);
}

const dir = await Deno.makeTempDir({ prefix: "ctl-snapmem-" });
// Snapshots every 5,000 entries (100,000 by default), so that the run takes some.
const sys = await CtlSystem.start(dir, ["--snapshot-entries", "5000"]);
try {
  const url = await sys.leaderUrl();
  const deadline = performance.now() + Number(args.seconds) * 1000;
  let written = 0;
  let key = 0;
  await Promise.all(
    Array.from({ length: Number(args.clients) }, async () => {
      const poster = new RawPoster();
      try {
        while (performance.now() < deadline) {
          const base = (key += 100);
          if (await sys.write(poster, url, 100, base)) written += 100;
        }
      } finally {
        poster.close();
      }
    }),
  );
  console.log(`wrote ${written} rows in ${args.seconds} s`);
  await waitFor("every member to take a snapshot", async () => {
    for (const m of sys.cluster.members) {
      // Index 1 is the founding snapshot of a new cluster.
      if ((await metric(m.url, "ctl_raft_snapshot_index")) <= 1) return false;
    }
    return true;
  }, 120_000);
  const sorMb = filesMb(sys.cluster.members[0].dataDir, /^sor\.db/);
  const snapMb = filesMb(sys.cluster.members[0].dataDir, /\.snap$/);
  console.log(`SoR files ${sorMb.toFixed(0)} MB, newest snapshot file ${snapMb.toFixed(0)} MB`);
  const ids = sys.cluster.members.map((m) => m.id.padStart(12)).join("");
  console.log(`seconds${ids}  (VmRSS MB, * = snapshot data in memory)`);
  for (let t = 0; t <= Number(args.watch); t += 5) {
    const row = await Promise.all(sys.cluster.members.map(async (m) => {
      const held = (await metric(m.url, "ctl_raft_snapshot_in_memory")) === 1 ? "*" : " ";
      return `${residentMb(m.process.proc!.pid).toFixed(0)}${held}`.padStart(12);
    }));
    console.log(`${String(t).padStart(7)}${row.join("")}`);
    await sleep(5000);
  }
  const peaks = sys.cluster.members.map((m) =>
    residentMb(m.process.proc!.pid, "VmHWM").toFixed(0).padStart(12)
  );
  console.log(`   peak${peaks.join("")}  (VmHWM MB, over the whole run)`);
  // A restart loads the newest snapshot file (its peer registry, and the state if the SoR is
  // behind it): what does that cost each member at its peak?
  for (const m of sys.cluster.members) await m.process.kill("SIGKILL");
  sys.cluster.start();
  await sys.cluster.leader(60_000);
  await sleep(5000);
  const restarted = sys.cluster.members.map((m) =>
    `${residentMb(m.process.proc!.pid).toFixed(0)} / ${
      residentMb(m.process.proc!.pid, "VmHWM").toFixed(0)
    }`.padStart(12)
  );
  console.log(`restart${restarted.join("")}  (VmRSS / VmHWM MB, 5 s after a leader)`);
} finally {
  await sys.stop();
  if (Deno.env.get("KEEP")) console.log(dir);
  else await Deno.remove(dir, { recursive: true });
}
