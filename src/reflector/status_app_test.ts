import assert from "node:assert/strict";
import type { ReflectorStatus } from "./reflector.ts";
import { createReflectorStatusApp } from "./status_app.ts";

function status(overrides: Partial<ReflectorStatus>): ReflectorStatus {
  return {
    ldbPath: "/tmp/ldb.db",
    appliedSeq: 40,
    clusterSeq: 42,
    lagEntries: 2,
    ledgerLatencyMs: 1500,
    executive: "http://e1",
    connected: true,
    lastHeardAgoMs: 10,
    entriesApplied: 40,
    reconnects: 3,
    lastError: undefined,
    ...overrides,
  };
}

Deno.test("/status reports applied vs cluster seq; 503 while disconnected", async () => {
  let current = status({});
  const app = createReflectorStatusApp({ status: () => current });
  const res = await app.request("/status");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.appliedSeq, 40);
  assert.equal(body.lagEntries, 2);
  current = status({ connected: false, executive: undefined });
  assert.equal((await app.request("/status")).status, 503);
  const missing = await app.request("/nope");
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "not_found");
});

Deno.test("/metrics exposes seq, lag and ledger latency for Prometheus", async () => {
  const app = createReflectorStatusApp({ status: () => status({}) });
  const res = await app.request("/metrics");
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /^ctl_reflector_applied_seq 40$/m);
  assert.match(text, /^ctl_reflector_cluster_seq 42$/m);
  assert.match(text, /^ctl_reflector_lag_entries 2$/m);
  assert.match(text, /^ctl_reflector_ledger_latency_seconds 1.5$/m);
  assert.match(text, /^ctl_reflector_reconnects_total 3$/m);
});
