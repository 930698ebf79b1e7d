/**
 * One executive streaming the ledger to many tailing clients: the lag from a write's
 * acknowledgement to its arrival on each client's NDJSON stream.
 *
 *   deno run -A bench/stream_fanout_bench.ts [--clients 200] [--rate 200] [--seconds 10]
 *
 * 3 executives on loopback; the clients all stream from one follower (the leader only takes the
 * writes), so the figure is what a fleet of reflectors sees from one executive.
 */
import { parseArgs } from "node:util";
import { call, Cluster, createAppTable, WRITER } from "../tests/system/harness.ts";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "200" },
    rate: { type: "string", default: "200" },
    seconds: { type: "string", default: "10" },
  },
});
const clients = Number(values.clients);
const ratePerS = Number(values.rate);
const seconds = Number(values.seconds);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

const dir = await Deno.makeTempDir({ prefix: "ctl-fanout-" });
const cluster = new Cluster(dir, 3);
cluster.start();
try {
  const leader = await cluster.leader();
  const follower = cluster.members.find((m) => m.id !== leader.id)!.url;
  await createAppTable(leader.url, [["id", "integer"]], { fastWriter: true });
  const startSeq = (await call(follower, "GET", "/status")).json.lastSeq as number;

  const ackedAt = new Map<number, number>();
  const lags: number[] = [];
  const abort = new AbortController();
  let connected = 0;
  const readers = Array.from({ length: clients }, async () => {
    const res = await fetch(`${follower}/v1/ledger/stream?after=${startSeq}`, {
      signal: abort.signal,
    });
    connected++;
    const decoder = new TextDecoderStream();
    let buffer = "";
    try {
      for await (const chunk of res.body!.pipeThrough(decoder)) {
        const now = performance.now();
        buffer += chunk;
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          const entry = JSON.parse(line);
          if (entry.seq === undefined) continue;
          const acked = ackedAt.get(entry.seq);
          // An entry can arrive before its writer sees the ack: that counts as zero lag.
          lags.push(acked === undefined ? 0 : Math.max(0, now - acked));
        }
      }
    } catch {
      // aborted at the end
    }
  });
  while (connected < clients) await new Promise((r) => setTimeout(r, 20));

  const intervalMs = 1000 / ratePerS;
  const end = performance.now() + seconds * 1000;
  let next = performance.now();
  let k = 0;
  const inflight: Promise<void>[] = [];
  while (performance.now() < end) {
    const id = k++;
    inflight.push((async () => {
      const res = await fetch(`${leader.url}/families/app/mutations`, {
        method: "POST",
        headers: WRITER,
        body: JSON.stringify({ mutations: [{ table: "rows", delete: false, values: { id } }] }),
      });
      const body = await res.json();
      if (res.status === 200) ackedAt.set(body.seq, performance.now());
    })());
    next += intervalMs;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await Promise.all(inflight);
  await new Promise((r) => setTimeout(r, 1000));
  abort.abort();
  // An aborted body does not always end a pending read of a piped stream: don't wait forever.
  await Promise.race([Promise.allSettled(readers), new Promise((r) => setTimeout(r, 2000))]);
  lags.sort((a, b) => a - b);
  const expected = ackedAt.size * clients;
  console.log(
    `stream fan-out: ${clients} clients on one follower, ${ackedAt.size} writes at ` +
      `${ratePerS}/s over ${seconds}s; ${lags.length}/${expected} deliveries`,
  );
  console.log(
    `lag from ack to delivery: p50 ${percentile(lags, 0.5).toFixed(2)} ms, ` +
      `p99 ${percentile(lags, 0.99).toFixed(2)} ms, max ${lags.at(-1)!.toFixed(2)} ms ` +
      `(target p99 ≤ 100 ms)`,
  );
} finally {
  await cluster.stop();
  await Deno.remove(dir, { recursive: true });
}
Deno.exit(0);
