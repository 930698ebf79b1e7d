/** `ctl sidecar --ldb FILE`: serves the LDB over HTTP with ctlstore's sidecar routes. */
import { createSidecarApp, openLazily } from "../src/sidecar/app.ts";
import { log } from "../src/util/log.ts";
import type { CommandSpec } from "./cli.ts";
import { parseListen } from "./serve.ts";

/** The `ctl sidecar` command. */
export const sidecarCommand: CommandSpec = {
  name: "sidecar",
  summary: "serve the LDB over HTTP (ctlstore's sidecar routes)",
  description: "Serves reads of the local LDB over HTTP for apps that cannot link the reader " +
    "library: ctlstore's routes (/get-row-by-key, /get-rows-by-key-prefix, " +
    "/get-ledger-latency, /healthcheck, /ping) plus ?min_seq=N, /health and /metrics.",
  flags: [
    {
      name: "ldb",
      type: "string",
      help: "LDB file",
      default: "/var/lib/ctl/ldb.db",
      placeholder: "FILE",
    },
    { name: "listen", type: "string", help: "bind address", default: "0.0.0.0:1331" },
    {
      name: "max-rows",
      type: "int",
      help: "prefix reads matching more rows answer 416",
      default: 10_000,
      placeholder: "N",
    },
    {
      name: "min-seq-wait",
      type: "duration",
      help: "longest wait for ?min_seq=N before 504",
      default: "5s",
    },
    {
      name: "health-max-latency",
      type: "duration",
      help: "/health is 503 when the ledger latency exceeds this",
      default: "60s",
    },
  ],
  run: async (opts) => {
    const ldb = openLazily(String(opts.ldb));
    const app = createSidecarApp({
      ldb,
      maxRows: Number(opts.maxRows),
      minSeqWaitMaxMs: Number(opts.minSeqWait),
      healthMaxLatencyMs: Number(opts.healthMaxLatency),
    });
    const listen = parseListen(String(opts.listen));
    const abort = new AbortController();
    const server = Deno.serve({ ...listen, signal: abort.signal, onListen: () => {} }, app.fetch);
    log("sidecar").info("Sidecar on http://{host}:{port} over {ldb}", {
      host: listen.hostname,
      port: server.addr.port,
      ldb: opts.ldb,
    });
    const stop = () => abort.abort();
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    try {
      await server.finished;
      return 0;
    } finally {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      ldb.close();
    }
  },
};
