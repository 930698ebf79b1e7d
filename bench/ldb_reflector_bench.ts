/**
 * Reflector figures against an in-process ledger server on loopback:
 *  - catch-up: entries/s applied when the LDB starts empty and the ledger holds N entries
 *    (batched transactions, fsync per batch, with and without a changelog);
 *  - follow latency: time from appending one entry on the server to its commit in the LDB,
 *    p50/p99, while following the live stream.
 *
 *   deno run -A bench/ldb_reflector_bench.ts [entries=20000] [samples=200]
 */
import { join } from "node:path";
import { Reflector } from "../src/reflector/reflector.ts";
import { syntheticLedger, TestLedgerServer } from "../src/reflector/test_ledger_server.ts";

const entries = Number(Deno.args[0] ?? 20_000);
const samples = Number(Deno.args[1] ?? 200);
const ledger = syntheticLedger(entries + samples);

async function catchUp(withChangelog: boolean): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-reflector-bench-" });
  const server = new TestLedgerServer({ heartbeatMs: 1_000 });
  server.append(...ledger.slice(0, entries));
  const reflector = new Reflector({
    ldbPath: join(dir, "ldb.db"),
    executives: [server.url],
    changelog: withChangelog
      ? { path: join(dir, "changes.log"), rotateBytes: 64 << 20, filesMax: 4 }
      : undefined,
  });
  const caughtUp = Promise.withResolvers<void>();
  reflector.onApplied((seq) => seq === entries && caughtUp.resolve());
  const started = performance.now();
  const done = reflector.run();
  await caughtUp.promise;
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `catch-up${withChangelog ? " + changelog" : ""}: ${entries} entries in ` +
      `${seconds.toFixed(2)} s = ${Math.round(entries / seconds).toLocaleString("en")} entries/s`,
  );
  if (!withChangelog) {
    const latenciesMs: number[] = [];
    for (let i = 0; i < samples; i++) {
      const entry = ledger[entries + i];
      const applied = Promise.withResolvers<void>();
      const off = reflector.onApplied((seq) => seq === entry.seq && applied.resolve());
      const t0 = performance.now();
      server.append(entry);
      await applied.promise;
      latenciesMs.push(performance.now() - t0);
      off();
    }
    latenciesMs.sort((a, b) => a - b);
    const pct = (p: number) => latenciesMs[Math.floor(latenciesMs.length * p)].toFixed(2);
    console.log(
      `follow latency (append on server → committed in LDB, fsync included): ` +
        `p50 ${pct(0.5)} ms  p99 ${pct(0.99)} ms over ${samples} entries`,
    );
  }
  await reflector.stop();
  await done;
  await server.close();
  Deno.removeSync(dir, { recursive: true });
}

await catchUp(false);
await catchUp(true);
