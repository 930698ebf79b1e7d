/**
 * Figures and their arithmetic: percentiles, medians, and the result rows that `bench/run.ts`
 * prints as a table and writes as JSON.
 */

/** The `p` quantile (0..1) of an ascending array; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** A sorted copy. */
export function sorted(values: Iterable<number>): number[] {
  return [...values].sort((a, b) => a - b);
}

/** The median of `values` (any order); NaN when empty. */
export function median(values: readonly number[]): number {
  const s = sorted(values);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Which way a figure is better, and the target it is held to. */
export interface Target {
  /** "max": the figure must be ≤ value; "min": ≥ value. */
  kind: "max" | "min";
  value: number;
  /** Compare against the etcd figure times `value` instead of an absolute value. */
  relativeToEtcd?: boolean;
  /** Which statistic is held to the target. */
  on: "median" | "p99";
  /** How the target reads, e.g. "≥ 2× etcd". */
  text: string;
}

/** One row of the results table. */
export interface Result {
  /** Which bench produced it (`--only` name). */
  bench: string;
  /** What is measured, e.g. "write throughput, 64 clients, 1 row". */
  name: string;
  unit: string;
  /** Median over runs (throughput) or p50 of all samples (latency). */
  median: number;
  /** p99 of all samples; NaN when not meaningful (throughput). */
  p99: number;
  /** Samples or runs behind the figure. */
  n: number;
  /** The same figure for etcd, measured in the same run. */
  etcd?: { median: number; p99: number; n: number };
  target?: Target;
  /** Free text: how it was measured, caveats. */
  note?: string;
  /** Per-run figures and anything else worth keeping in the JSON. */
  detail?: Record<string, unknown>;
}

/** ctl/etcd ratio of the medians, undefined without an etcd figure. */
export function ratio(r: Result): number | undefined {
  if (!r.etcd || !(r.etcd.median > 0)) return undefined;
  return r.median / r.etcd.median;
}

/** "met", "missed" or "" (no target, or a relative target without etcd). */
export function verdict(r: Result): "met" | "missed" | "" {
  const t = r.target;
  if (!t) return "";
  const mine = t.on === "median" ? r.median : r.p99;
  let bound = t.value;
  if (t.relativeToEtcd) {
    if (!r.etcd) return "";
    bound = t.value * (t.on === "median" ? r.etcd.median : r.etcd.p99);
  }
  if (!Number.isFinite(mine)) return "missed";
  return (t.kind === "max" ? mine <= bound : mine >= bound) ? "met" : "missed";
}

/** A number for the table: 3 significant digits, thousands separated. */
export function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return "–";
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString("en");
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}
