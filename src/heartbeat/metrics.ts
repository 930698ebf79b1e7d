/** Prometheus metrics of the heartbeat, read from its stats at scrape time. */
import { Gauge, Registry } from "prom-client";
import type { Heartbeat } from "./heartbeat.ts";

/** A registry over `heartbeat.stats`. */
export function heartbeatMetrics(heartbeat: Pick<Heartbeat, "stats">): Registry {
  const registry = new Registry();
  for (
    const [name, help, read] of [
      ["ctl_heartbeat_beats_total", "heartbeats written", () => heartbeat.stats.beats],
      ["ctl_heartbeat_failures_total", "heartbeats that failed", () => heartbeat.stats.failures],
      [
        "ctl_heartbeat_last_seq",
        "ledger seq of the last heartbeat",
        () => heartbeat.stats.lastSeq ?? 0,
      ],
    ] as [string, string, () => number][]
  ) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  }
  return registry;
}
