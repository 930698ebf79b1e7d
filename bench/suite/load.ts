/**
 * A closed-loop HTTP load generator: `concurrency` clients, each sending its next request as soon
 * as the previous one answered, for a fixed time, each over its own keep-alive connection
 * (`http1.ts`). The same generator drives ctl and etcd, so their figures differ only by the
 * server.
 */
import { FetchPoster, type Poster, RawPoster } from "./http1.ts";

/** One request a client sends over its poster; true when the server accepted it. */
export type Send = (poster: Poster, worker: number, i: number) => Promise<boolean>;

/** How clients send: `raw` HTTP/1.1 on a connection each (default), or `fetch`. */
export type ClientKind = "raw" | "fetch";

/** Parses a `--client` flag. */
export function clientKind(raw: string | undefined): ClientKind {
  if (raw === undefined || raw === "raw" || raw === "fetch") return raw ?? "raw";
  throw new Error(`--client must be raw or fetch, not ${raw}`);
}

/** What one load run measured. */
export interface LoadRun {
  /** Requests answered with success. */
  ok: number;
  /** Requests that failed (non-2xx or connection error). */
  failed: number;
  seconds: number;
  /** Successful requests per second. */
  perSecond: number;
  /** Latency of every successful request, ms, ascending. */
  latenciesMs: Float64Array;
  /** First failure's message, for the log. */
  firstError?: string;
}

/** A keep-alive client with room for `connections` idle connections. */
export function httpClient(connections: number): Deno.HttpClient {
  return Deno.createHttpClient({ poolMaxIdlePerHost: Math.max(1, connections) });
}

/**
 * Runs `concurrency` clients for `warmupMs` (not counted) then `durationMs` (counted) and
 * returns the counted figures. `window` is told when the counted time starts and ends (to
 * measure something else over exactly that time, e.g. CPU).
 */
export async function runLoad(
  send: Send,
  opts: {
    concurrency: number;
    durationMs: number;
    warmupMs?: number;
    client?: ClientKind;
    window?: (phase: "start" | "end") => void;
  },
): Promise<LoadRun> {
  const client = httpClient(opts.concurrency);
  const posters: Poster[] = Array.from(
    { length: opts.concurrency },
    () => opts.client === "fetch" ? new FetchPoster(client) : new RawPoster(),
  );
  try {
    const latencies: number[] = [];
    let ok = 0;
    let failed = 0;
    let firstError: string | undefined;
    let counting = false;
    let next = 0;
    const start = performance.now();
    const countFrom = start + (opts.warmupMs ?? 0);
    const deadline = countFrom + opts.durationMs;
    // Told once each, in order, even when the timers run late.
    let told = 0;
    const tell = (upTo: 1 | 2) => {
      for (; told < upTo; told++) opts.window?.(told === 0 ? "start" : "end");
    };
    const windowTimers = opts.window === undefined ? [] : [
      setTimeout(() => tell(1), countFrom - start),
      setTimeout(() => tell(2), deadline - start),
    ];
    const worker = async (w: number) => {
      while (true) {
        const t0 = performance.now();
        if (t0 >= deadline) return;
        let good = false;
        try {
          good = await send(posters[w], w, next++);
        } catch (e) {
          firstError ??= String(e);
        }
        const t1 = performance.now();
        // Completions inside the window count, whenever they were sent: a run of slow requests
        // is not cut short at either edge.
        if (t1 >= countFrom && t1 <= deadline) {
          counting = true;
          if (good) {
            ok++;
            latencies.push(t1 - t0);
          } else {
            failed++;
          }
        }
        if (!good) {
          firstError ??= "non-2xx answer";
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: opts.concurrency }, (_, w) => worker(w)));
    } finally {
      windowTimers.forEach(clearTimeout);
      if (opts.window !== undefined) tell(2);
    }
    const seconds = counting ? opts.durationMs / 1000 : 0;
    const latenciesMs = Float64Array.from(latencies).sort();
    return {
      ok,
      failed,
      seconds,
      perSecond: seconds > 0 ? ok / seconds : 0,
      latenciesMs,
      firstError,
    };
  } finally {
    for (const p of posters) p.close();
    client.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
