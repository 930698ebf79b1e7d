/** Durations in flags and config: `250ms`, `15s`, `5m`, `1h`, or a bare number of milliseconds. */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a duration to milliseconds; throws an Error naming the bad value. */
export function parseDurationMs(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a duration (examples: 250ms, 15s, 5m, 1h)`);
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? "ms"];
  if (!Number.isFinite(ms)) throw new Error(`"${text}" is not a finite duration`);
  return Math.round(ms);
}
