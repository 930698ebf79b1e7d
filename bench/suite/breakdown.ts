/**
 * Where one sequential write's latency goes, by subtraction, measured from the client: the same
 * keep-alive connection and one request at a time, interleaved round-robin so every step sees
 * the same noise.
 *
 *  - HTTP round trip: `GET /bench-no-such-route` (hono's 404) on the leader;
 *  - + auth, body read, JSON parse, validation: a mutation the executive refuses before Raft
 *    (a string where the table wants one of 32 characters at most → 400 `invalid_value`);
 *  - + Raft propose → commit → apply: the same mutation, valid, to the leader;
 *  - + forwarding: the valid mutation to a follower;
 *  - and, where etcd runs, its serializable range (no Raft) and put, for scale.
 *
 * It also scrapes the leader's `/metrics` for the mean Raft log append (write + fdatasync).
 */
import { httpClient } from "./load.ts";
import {
  type CtlSystem,
  type EtcdSystem,
  FAMILY,
  TABLE,
  WRITER,
  WRITER_SECRET,
} from "./systems.ts";
import { quantile, type Result, sorted } from "./stats.ts";
import { FetchPoster } from "./http1.ts";
import { metricSum } from "./prom.ts";

type Step = { name: string; send: (client: Deno.HttpClient, i: number) => Promise<boolean> };

/** Cumulative bucket counts of a histogram: [le seconds, count][]. */
function buckets(text: string, name: string): [number, number][] {
  const out: [number, number][] = [];
  for (const line of text.split("\n")) {
    const m = line.match(new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\} (\\S+)$`));
    if (m && m[1] !== "+Inf") out.push([Number(m[1]), Number(m[2])]);
  }
  return out;
}

/** The smallest bucket bound holding the `p` quantile of the appends between two scrapes. */
function bucketQuantileMs(before: string, after: string, p: number): number {
  const name = "ctl_raft_log_append_seconds";
  const b = buckets(before, name);
  const a = buckets(after, name);
  const total = metricSum(after, `${name}_count`) - metricSum(before, `${name}_count`);
  for (let i = 0; i < a.length; i++) {
    if (a[i][1] - (b[i]?.[1] ?? 0) >= p * total) return a[i][0] * 1000;
  }
  return Infinity;
}

export async function benchBreakdown(
  ctl: CtlSystem,
  etcd: EtcdSystem | undefined,
  o: { requests: number; log: (s: string) => void },
): Promise<Result[]> {
  const leader = await ctl.leaderUrl();
  const follower = await ctl.followerUrl();
  const headers = {
    "ctlstore-writer": WRITER,
    "ctlstore-secret": WRITER_SECRET,
    "content-type": "application/json",
  };
  const post = async (client: Deno.HttpClient, url: string, body: unknown, want: number) => {
    const res = await fetch(`${url}/families/${FAMILY}/mutations`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      client,
    });
    await res.arrayBuffer();
    return res.status === want;
  };
  const steps: Step[] = [
    {
      name: "HTTP round trip (404 route)",
      send: async (client) => {
        const res = await fetch(`${leader}/bench-no-such-route`, { client });
        await res.arrayBuffer();
        return res.status === 404;
      },
    },
    {
      name: "write refused before Raft (auth + parse + validate → 400)",
      send: (client, i) =>
        post(client, leader, {
          mutations: [{ table: TABLE, delete: false, values: { k: `k${i}`, v: "x".repeat(300) } }],
        }, 400),
    },
    // All steps go through fetch, so they differ only by what the server does.
    {
      name: "write to the leader",
      send: (client, i) => ctl.write(new FetchPoster(client), leader, 1, i),
    },
    {
      name: "write via a follower",
      send: (client, i) => ctl.write(new FetchPoster(client), follower, 1, i),
    },
  ];
  if (etcd) {
    const eUrl = await etcd.leaderUrl();
    steps.push({
      name: "etcd serializable range (no Raft)",
      send: async (client, i) => {
        const res = await fetch(`${eUrl}/v3/kv/range`, {
          method: "POST",
          body: JSON.stringify({
            key: btoa(`${FAMILY}/${TABLE}/k${i % 1000}`),
            serializable: true,
          }),
          client,
        });
        await res.arrayBuffer();
        return res.ok;
      },
    }, {
      name: "etcd put to the leader",
      send: (client, i) => etcd.write(new FetchPoster(client), eUrl, 1, i),
    });
  }
  const client = httpClient(1);
  const times = steps.map(() => [] as number[]);
  let failed = 0;
  const before = await (await fetch(`${leader}/metrics`)).text();
  const t0 = performance.now();
  for (let i = 0; i < o.requests + 50; i++) {
    for (let s = 0; s < steps.length; s++) {
      const t = performance.now();
      const ok = await steps[s].send(client, i);
      if (!ok) failed++;
      if (i >= 50 && ok) times[s].push(performance.now() - t);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = await (await fetch(`${leader}/metrics`)).text();
  client.close();
  const appends = metricSum(after, "ctl_raft_log_append_seconds_count") -
    metricSum(before, "ctl_raft_log_append_seconds_count");
  const appendS = metricSum(after, "ctl_raft_log_append_seconds_sum") -
    metricSum(before, "ctl_raft_log_append_seconds_sum");
  const appendP50 = bucketQuantileMs(before, after, 0.5);
  const appendP99 = bucketQuantileMs(before, after, 0.99);
  o.log(
    `  breakdown: leader log append ≤ ${appendP50} ms for half, ≤ ${appendP99} ms for 99% ` +
      "(histogram buckets)",
  );
  o.log(
    `  breakdown: ${o.requests} rounds in ${seconds.toFixed(1)} s, ${failed} unexpected answers; ` +
      `leader log appends ${appends}, mean ${
        (appends ? (1000 * appendS) / appends : 0).toFixed(2)
      } ms`,
  );
  const results: Result[] = steps.map((s, k) => {
    const xs = sorted(times[k]);
    return {
      bench: "breakdown",
      name: `1 client: ${s.name}`,
      unit: "ms",
      median: quantile(xs, 0.5),
      p99: quantile(xs, 0.99),
      n: xs.length,
    };
  });
  results.push({
    bench: "breakdown",
    name: "leader Raft log append (write + fdatasync), mean",
    unit: "ms",
    median: appends ? (1000 * appendS) / appends : NaN,
    p99: appendP99,
    n: appends,
    note: "from the leader's ctl_raft_log_append_seconds histogram during the breakdown; " +
      `p99 is a bucket bound; half the appends took ≤ ${appendP50} ms`,
    detail: { appendP50BucketMs: appendP50, appendP99BucketMs: appendP99 },
  });
  return results;
}
