/**
 * `ctl heartbeat --executive URL[,URL…] --admin-token T --writer-secret S --interval 15s`:
 * rewrites `ctlstore.heartbeats["heartbeat"]` with the current unix nanoseconds every interval,
 * so every LDB can tell how stale it is. Failures are logged; the loop runs until SIGINT/SIGTERM.
 */
import { Heartbeat, HEARTBEAT_INTERVAL_MS_MIN } from "../src/heartbeat/heartbeat.ts";
import { log } from "../src/util/log.ts";
import { ADMIN_TOKEN_FLAG, EXECUTIVE_FLAG, executiveUrls } from "./admin_common.ts";
import { type CommandSpec, UsageError } from "./cli.ts";
import { heartbeatMetrics } from "../src/heartbeat/metrics.ts";
import { METRICS_LISTEN_FLAG, serveMetrics } from "./serve.ts";

/** The `ctl heartbeat` command. */
export const heartbeatCommand: CommandSpec = {
  name: "heartbeat",
  summary: "write a heartbeat row every interval (staleness probe)",
  description: "Registers writer `heartbeat`, creates family `ctlstore` and table `heartbeats` " +
    '(name string key, value integer) when missing, then upserts {name: "heartbeat", value: ' +
    "<unix nanoseconds>} every interval, trying the executives in turn. Readers compute an " +
    "LDB's staleness as now minus that value.",
  flags: [
    EXECUTIVE_FLAG,
    { ...ADMIN_TOKEN_FLAG, required: true },
    {
      name: "writer-secret",
      type: "string",
      help: "secret of the heartbeat writer (registered with it)",
      required: true,
      placeholder: "SECRET",
    },
    { name: "interval", type: "duration", help: "time between beats", default: "15s" },
    { name: "once", type: "bool", help: "write one beat and exit (1 when it fails)" },
    METRICS_LISTEN_FLAG,
  ],
  run: async (opts) => {
    const intervalMs = Number(opts.interval);
    if (intervalMs < HEARTBEAT_INTERVAL_MS_MIN) {
      throw new UsageError(`--interval must be at least ${HEARTBEAT_INTERVAL_MS_MIN}ms`);
    }
    const secret = String(opts.writerSecret);
    if (secret.length < 3 || secret.length > 100) {
      throw new UsageError("--writer-secret must be 3 to 100 characters");
    }
    const heartbeat = new Heartbeat({
      executives: executiveUrls(opts),
      adminToken: String(opts.adminToken),
      writerSecret: secret,
      intervalMs,
    });
    if (opts.once) {
      try {
        const seq = await heartbeat.beat();
        console.log(`heartbeat written (seq ${seq})`);
        return 0;
      } catch (e) {
        console.error(`Error: heartbeat failed: ${(e as Error).message}`);
        return 1;
      }
    }
    log("heartbeat").info("Heartbeat every {intervalMs} ms to {executives}", {
      intervalMs,
      executives: (opts.executive as string[]).join(","),
    });
    const metricsAbort = new AbortController();
    const metrics = serveMetrics(
      opts.listen as string | undefined,
      heartbeatMetrics(heartbeat),
      metricsAbort.signal,
    );
    const stop = () => heartbeat.stop();
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    try {
      await heartbeat.run();
      return 0;
    } finally {
      metricsAbort.abort();
      await metrics?.finished;
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
    }
  },
};
