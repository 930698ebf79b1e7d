/**
 * `ctl reflector --ldb FILE --executive URL[,URL…]`: follows the ledger into the LDB until
 * SIGINT/SIGTERM, optionally writing a changelog and serving `/status` and `/metrics`.
 */
import { terminalProgress } from "../src/bootstrap/progress.ts";
import { followWithBootstrap } from "../src/reflector/follow.ts";
import type { Reflector } from "../src/reflector/reflector.ts";
import { createReflectorStatusApp } from "../src/reflector/status_app.ts";
import { log } from "../src/util/log.ts";
import { type CommandSpec, UsageError } from "./cli.ts";
import { parseListen } from "./serve.ts";

/** The `ctl reflector` command. */
export const reflectorCommand: CommandSpec = {
  name: "reflector",
  summary: "follow the ledger into the local LDB",
  description: "Follows the ledger from the executives (NDJSON stream, long-poll fallback, " +
    "failover to the next URL with backoff) into the LDB, one SQLite transaction per batch of " +
    "entries, resuming from the LDB's _ldb_seq.",
  flags: [
    {
      name: "ldb",
      type: "string",
      help: "LDB file (created if missing)",
      required: true,
      placeholder: "FILE",
    },
    {
      name: "executive",
      type: "list",
      help: "executive URLs, comma-separated",
      required: true,
      placeholder: "URL[,URL…]",
    },
    {
      name: "families",
      type: "list",
      help: "apply only these families (default: all)",
      placeholder: "A,B",
    },
    {
      name: "changelog",
      type: "string",
      help: "write one JSON line per changed row to FILE",
      placeholder: "FILE",
    },
    {
      name: "changelog-rotate-bytes",
      type: "int",
      help: "rotate the changelog at this size",
      default: 100 * 1024 * 1024,
      placeholder: "BYTES",
    },
    {
      name: "changelog-files",
      type: "int",
      help: "rotated changelog files to keep (FILE.1…N)",
      default: 10,
      placeholder: "N",
    },
    {
      name: "listen",
      type: "string",
      help: "serve /status and /metrics on host:port",
      placeholder: "HOST:PORT",
    },
    {
      name: "idle-timeout",
      type: "duration",
      help: "fail over when an executive sends nothing for this long",
      default: "15s",
    },
    {
      name: "bootstrap",
      type: "string",
      help: "snapshot location (file:///DIR, http(s)://…) to start from when the LDB is missing; " +
        "the executives' /v1/snapshot is also tried when the LDB is behind the ledger retention",
      placeholder: "URL",
    },
    {
      name: "backoff-max",
      type: "duration",
      help: "longest pause between reconnects",
      default: "5s",
    },
  ],
  run: async (opts) => {
    const executives = opts.executive as string[];
    if (executives.length === 0) throw new UsageError("--executive needs at least one URL");
    for (const url of executives) {
      if (!URL.canParse(url)) throw new UsageError(`--executive "${url}" is not a URL`);
    }
    const listen = opts.listen ? parseListen(String(opts.listen)) : undefined;
    let current: Reflector | undefined;
    const abort = new AbortController();
    const server = listen
      ? Deno.serve(
        { ...listen, onListen: () => {} },
        createReflectorStatusApp({
          // Before the first Reflector exists (bootstrapping) the status says so: 503.
          status: () =>
            current?.status() ?? {
              ldbPath: String(opts.ldb),
              appliedSeq: 0,
              clusterSeq: undefined,
              lagEntries: undefined,
              ledgerLatencyMs: undefined,
              executive: undefined,
              connected: false,
              lastHeardAgoMs: undefined,
              entriesApplied: 0,
              reconnects: 0,
              lastError: "bootstrapping the LDB from a snapshot",
            },
        }).fetch,
      )
      : undefined;
    if (server) {
      log("reflector").info("Status on http://{host}:{port}/status", {
        host: listen!.hostname,
        port: server.addr.port,
      });
    }
    const stop = () => abort.abort();
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    const progress = terminalProgress();
    try {
      await followWithBootstrap({
        reflector: {
          ldbPath: String(opts.ldb),
          executives,
          families: opts.families as string[] | undefined,
          changelog: opts.changelog
            ? {
              path: String(opts.changelog),
              rotateBytes: Number(opts.changelogRotateBytes),
              filesMax: Number(opts.changelogFiles),
            }
            : undefined,
          idleTimeoutMs: Number(opts.idleTimeout),
          backoffMaxMs: Number(opts.backoffMax),
        },
        bootstrapUrl: opts.bootstrap as string | undefined,
        onProgress: progress.onProgress,
        onReflector: (r) => current = r,
        signal: abort.signal,
      });
      return 0;
    } finally {
      progress.stop();
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      await server?.shutdown();
    }
  },
};
