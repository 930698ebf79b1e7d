/**
 * Sidecar throughput on loopback: `POST /get-row-by-key` of random existing keys from concurrent
 * keep-alive clients against a sidecar in its own process (as deployed). Prints requests/s and
 * latency percentiles. Target: ≥ 15,000 requests/s.
 *
 *   deno run -A bench/sidecar_bench.ts [durationSeconds=5] [connections=32]
 *
 * (Invoked as `… sidecar_bench.ts serve LDB_PATH` it is the sidecar process itself.)
 */
import { createSidecarApp, openLazily } from "../src/sidecar/app.ts";
import { createTestLdb } from "../src/ldb/testing.ts";

const ROWS = 10_000;

if (Deno.args[0] === "serve") {
  const app = createSidecarApp({
    ldb: openLazily(Deno.args[1]),
    maxRows: 1_000,
    minSeqWaitMaxMs: 1_000,
    healthMaxLatencyMs: 60_000,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  console.log(server.addr.port);
} else {
  await runClients(Number(Deno.args[0] ?? 5), Number(Deno.args[1] ?? 32));
}

async function runClients(durationSeconds: number, connections: number): Promise<void> {
  const ldb = createTestLdb([{
    family: "bench",
    table: "flags",
    fields: [["tenant", "string"], ["id", "integer"], ["enabled", "integer"], ["config", "text"]],
    keyFields: ["tenant", "id"],
    rows: Array.from({ length: ROWS }, (_, i) => ({
      tenant: `tenant-${i % 100}`,
      id: i,
      enabled: i % 2,
      config: `{"limit":${i}}`,
    })),
  }]);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "serve", ldb.path],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = Number((await reader.read()).value?.trim());
  const url = `http://127.0.0.1:${port}/get-row-by-key/bench/flags`;
  const bodies = Array.from({ length: 1024 }, () => {
    const i = Math.floor(Math.random() * ROWS);
    return JSON.stringify({ key: [{ value: `tenant-${i % 100}` }, { value: i }] });
  });

  const latenciesMs: number[] = [];
  let requests = 0;
  let failures = 0;
  const deadline = performance.now() + durationSeconds * 1000;
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: connections });
  const worker = async (w: number) => {
    let n = w;
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const res = await fetch(url, {
        method: "POST",
        body: bodies[n++ & 1023],
        headers: { "content-type": "application/json" },
        client,
      });
      await res.arrayBuffer();
      if (res.status !== 200) failures++;
      requests++;
      if ((requests & 15) === 0) latenciesMs.push(performance.now() - t0);
    }
  };
  // Warm-up, then the measured run.
  await Promise.all(Array.from({ length: 4 }, (_, w) =>
    fetch(url, {
      method: "POST",
      body: bodies[w],
      client,
    }).then((r) => r.arrayBuffer())));
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, (_, w) => worker(w)));
  const seconds = (performance.now() - started) / 1000;
  latenciesMs.sort((a, b) => a - b);
  const pct = (p: number) => latenciesMs[Math.floor(latenciesMs.length * p)].toFixed(2);
  console.log(
    `sidecar get-row-by-key: ${connections} connections, ${seconds.toFixed(1)} s, ` +
      `${requests} requests, ${failures} non-200`,
  );
  console.log(
    `throughput ${Math.round(requests / seconds).toLocaleString("en")} requests/s  ` +
      `latency p50 ${pct(0.5)} ms  p99 ${pct(0.99)} ms (client-observed)`,
  );
  client.close();
  child.kill("SIGTERM");
  await child.status;
  ldb.close();
  if (failures > 0) Deno.exitCode = 1;
}
