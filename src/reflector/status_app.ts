/**
 * The reflector's small status endpoint: `GET /status` (JSON staleness report) and
 * `GET /metrics` (Prometheus text). Built as a value over the reflector so it is tested with
 * `app.request()`; only cmd/reflector.ts listens.
 */
import { Hono } from "hono";
import { Counter, Gauge, Registry } from "prom-client";
import type { ReflectorStatus } from "./reflector.ts";

/** What the app reads: the reflector, or anything reporting the same status. */
export interface StatusSource {
  status(): ReflectorStatus;
}

/** Registers the reflector's gauges; values are read from `source` at scrape time. */
export function reflectorMetrics(source: StatusSource, registry = new Registry()): Registry {
  const read = () => source.status();
  new Gauge({
    name: "ctl_reflector_applied_seq",
    help: "Last ledger seq applied to the LDB",
    registers: [registry],
    collect() {
      this.set(read().appliedSeq);
    },
  });
  new Gauge({
    name: "ctl_reflector_cluster_seq",
    help: "The cluster's last committed ledger seq as last reported by an executive",
    registers: [registry],
    collect() {
      const seq = read().clusterSeq;
      if (seq !== undefined) this.set(seq);
    },
  });
  new Gauge({
    name: "ctl_reflector_lag_entries",
    help: "Committed ledger entries not yet applied to the LDB",
    registers: [registry],
    collect() {
      const lag = read().lagEntries;
      if (lag !== undefined) this.set(lag);
    },
  });
  new Gauge({
    name: "ctl_reflector_ledger_latency_seconds",
    help: "Now minus the leader timestamp of the last applied entry",
    registers: [registry],
    collect() {
      const ms = read().ledgerLatencyMs;
      if (ms !== undefined) this.set(ms / 1000);
    },
  });
  new Gauge({
    name: "ctl_reflector_connected",
    help: "1 while reading the ledger from an executive",
    registers: [registry],
    collect() {
      this.set(read().connected ? 1 : 0);
    },
  });
  new Counter({
    name: "ctl_reflector_entries_applied_total",
    help: "Ledger entries applied since start",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read().entriesApplied);
    },
  });
  new Counter({
    name: "ctl_reflector_reconnects_total",
    help: "Times the reflector moved to another executive or reconnected",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read().reconnects);
    },
  });
  return registry;
}

/** The status app. `/status` answers 503 while no executive is connected. */
export function createReflectorStatusApp(source: StatusSource): Hono {
  const registry = reflectorMetrics(source);
  const app = new Hono();
  app.get("/status", (c) => {
    const status = source.status();
    return c.json(status, status.connected ? 200 : 503);
  });
  app.get("/metrics", async (c) => {
    return c.body(await registry.metrics(), 200, { "content-type": registry.contentType });
  });
  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: `No route ${c.req.method} ${c.req.path}` } }, 404)
  );
  app.onError((e, c) =>
    c.json(
      { error: { code: "internal", message: e instanceof Error ? e.message : String(e) } },
      500,
    )
  );
  return app;
}
