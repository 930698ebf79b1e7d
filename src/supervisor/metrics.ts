/** Prometheus metrics of a supervisor: cycles by outcome, the last published seq and its cost. */
import { Counter, Gauge, Registry } from "prom-client";
import type { CycleResult } from "./supervisor.ts";

/** The registry and the hook that feeds it (pass `observe` as `onCycle`). */
export function supervisorMetrics(): { registry: Registry; observe: (r: CycleResult) => void } {
  const registry = new Registry();
  const cycles = new Counter({
    name: "ctl_supervisor_cycles_total",
    help: "snapshot cycles by outcome (published, skipped, failed)",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const seq = new Gauge({
    name: "ctl_supervisor_published_seq",
    help: "ledger seq of the last published snapshot",
    registers: [registry],
  });
  const copyMs = new Gauge({
    name: "ctl_supervisor_copy_ms",
    help: "time to copy the LDB for the last published snapshot",
    registers: [registry],
  });
  const sizeBytes = new Gauge({
    name: "ctl_supervisor_published_bytes",
    help: "gzipped size of the last published snapshot",
    registers: [registry],
  });
  return {
    registry,
    observe: (r) => {
      cycles.inc({ outcome: r.kind });
      if (r.kind === "published") {
        seq.set(r.seq);
        copyMs.set(r.copyMs);
        sizeBytes.set(r.sizeBytes);
      }
    },
  };
}
