/**
 * Snapshot bootstrap: fill a table of the ctl cluster with `rows` rows of ~500 bytes, then
 * install the leader's `GET /v1/snapshot` as a new LDB, with the bootstrap library (several
 * times, each into a fresh file) and once with `ctl bootstrap` (a whole process: Deno start-up
 * included). The first request also builds the snapshot; that build is reported on its own.
 */
import { join } from "node:path";
import { bootstrapLdb } from "../../src/bootstrap/bootstrap.ts";
import { ADMIN, call, CtlProcess } from "../../tests/system/harness.ts";
import { httpClient } from "./load.ts";
import { type CtlSystem, FAMILY, WRITER, WRITER_SECRET } from "./systems.ts";
import { median, quantile, type Result, sorted } from "./stats.ts";

const TABLE = "blob";
/** ~500 bytes a row: half random hex, half repetitive text, so gzip works as on real data. */
function payload(id: number): string {
  const random = Array.from({ length: 16 }, () => Math.random().toString(16).slice(2, 18)).join("");
  return `${id}:${random.slice(0, 250)}${"abcdefghij".repeat(25)}`;
}

export async function benchBootstrap(
  ctl: CtlSystem,
  dir: string,
  o: { rows: number; runs: number; log: (s: string) => void },
): Promise<Result[]> {
  const leader = await ctl.leaderUrl();
  const created = await call(leader, "POST", `/families/${FAMILY}/tables/${TABLE}`, {
    headers: ADMIN,
    json: { fields: [["id", "integer"], ["payload", "text"]], keyFields: ["id"] },
  });
  if (created.status !== 200) throw new Error(`create ${TABLE}: ${JSON.stringify(created.json)}`);
  const client = httpClient(8);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < o.rows) {
      const base = next;
      next += 100;
      const mutations = [];
      for (let id = base; id < Math.min(base + 100, o.rows); id++) {
        mutations.push({ table: TABLE, delete: false, values: { id, payload: payload(id) } });
      }
      const res = await fetch(`${leader}/families/${FAMILY}/mutations`, {
        method: "POST",
        headers: { "ctlstore-writer": WRITER, "ctlstore-secret": WRITER_SECRET },
        body: JSON.stringify({ mutations }),
        client,
      });
      const body = await res.text();
      if (res.status !== 200) throw new Error(`bootstrap fill: ${res.status} ${body}`);
    }
  }));
  client.close();
  o.log(`  bootstrap: wrote ${o.rows} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const url = `${leader}/v1/snapshot`;
  const timesMs: number[] = [];
  let sizeBytes = 0;
  let ldbBytes = 0;
  let firstMs = 0;
  for (let run = 0; run <= o.runs; run++) {
    const target = join(dir, "bootstrap", `lib-${run}`, "ldb.db");
    const t = performance.now();
    const r = await bootstrapLdb({ url, ldbPath: target, retries: 1 });
    const ms = performance.now() - t;
    sizeBytes = r.sizeBytes;
    ldbBytes = r.ldbSizeBytes;
    if (run === 0) firstMs = ms; // includes building the snapshot on the executive
    else timesMs.push(ms);
  }
  const cliTarget = join(dir, "bootstrap", "cli", "ldb.db");
  const cli = new CtlProcess("bootstrap", [
    "bootstrap",
    "--url",
    url,
    "--ldb",
    cliTarget,
  ], join(dir, "bootstrap-cli.log"));
  const tc = performance.now();
  cli.start();
  const status = await cli.proc!.status;
  const cliMs = performance.now() - tc;
  cli.proc = null;
  if (!status.success) {
    throw new Error(`ctl bootstrap exited ${status.code}: see bootstrap-cli.log`);
  }
  const size = `${o.rows} rows, ${(ldbBytes / 1e6).toFixed(1)} MB LDB, ` +
    `${(sizeBytes / 1e6).toFixed(1)} MB gzipped`;
  o.log(
    `  bootstrap: first (with snapshot build) ${firstMs.toFixed(0)} ms; library ` +
      `${median(timesMs).toFixed(0)} ms; ctl bootstrap ${cliMs.toFixed(0)} ms; ${size}`,
  );
  const s = sorted(timesMs);
  return [{
    bench: "bootstrap",
    name: "bootstrap from GET /v1/snapshot (library, cached snapshot)",
    unit: "ms",
    median: quantile(s, 0.5),
    p99: quantile(s, 0.99),
    n: s.length,
    note: size,
    detail: { runsMs: timesMs, firstWithBuildMs: firstMs, ldbBytes, sizeBytes },
  }, {
    bench: "bootstrap",
    name: "bootstrap, first request (executive builds the snapshot)",
    unit: "ms",
    median: firstMs,
    p99: NaN,
    n: 1,
    note: size,
  }, {
    bench: "bootstrap",
    name: "`ctl bootstrap --url …/v1/snapshot` (whole process)",
    unit: "ms",
    median: cliMs,
    p99: NaN,
    n: 1,
    note: "includes Deno start-up and module loading",
  }];
}
