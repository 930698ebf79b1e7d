/**
 * `ctl supervisor --ldb FILE --snapshot-url file:///DIR --interval 5m --keep 3 [--once]`:
 * snapshots the LDB online (the reflector keeps writing) and publishes it gzipped with its
 * SHA-256 and a `latest.json` manifest, the first at start, then every interval.
 *
 * `ctl bootstrap --url URL --ldb FILE`: installs the newest published snapshot as the LDB, so
 * a new host's reflector replays only the ledger after the snapshot's seq.
 */
import { bootstrapLdb, RETRIES_MAX } from "../src/bootstrap/bootstrap.ts";
import { BootstrapError } from "../src/bootstrap/errors.ts";
import { terminalProgress } from "../src/bootstrap/progress.ts";
import { SnapshotError } from "../src/supervisor/errors.ts";
import { KEEP_MAX } from "../src/supervisor/manifest.ts";
import { INTERVAL_MS_MIN, Supervisor } from "../src/supervisor/supervisor.ts";
import { openTarget, type SnapshotTarget } from "../src/supervisor/target.ts";
import { log } from "../src/util/log.ts";
import { type CommandSpec, UsageError } from "./cli.ts";
import { supervisorMetrics } from "../src/supervisor/metrics.ts";
import { METRICS_LISTEN_FLAG, serveMetrics } from "./serve.ts";

function target(opts: Record<string, unknown>): SnapshotTarget {
  try {
    return openTarget(String(opts.snapshotUrl), {
      stagingDir: opts.workDir ? String(opts.workDir) : undefined,
      token: opts.snapshotToken ? String(opts.snapshotToken) : undefined,
    });
  } catch (e) {
    if (e instanceof SnapshotError) throw new UsageError(`--snapshot-url: ${e.message}`);
    throw e;
  }
}

/** The `ctl supervisor` command. */
export const supervisorCommand: CommandSpec = {
  name: "supervisor",
  summary: "publish online snapshots of the LDB for fast bootstrap",
  description: "Every interval (the first at start) takes a consistent snapshot of the LDB " +
    "without stopping the reflector (SQLite VACUUM INTO from a read transaction), gzips it and " +
    "publishes it atomically to --snapshot-url as ldb-<seq>.db.gz with <name>.sha256 and " +
    "latest.json, keeping the newest --keep. Skips when the LDB has not moved; never publishes " +
    "a seq older than the published one.",
  flags: [
    {
      name: "ldb",
      type: "string",
      help: "LDB file to snapshot",
      required: true,
      placeholder: "FILE",
    },
    {
      name: "snapshot-url",
      type: "string",
      help: "where to publish: file:///DIR or http(s)://PREFIX/ (PUT/DELETE)",
      required: true,
      placeholder: "URL",
    },
    { name: "interval", type: "duration", help: "time between snapshots", default: "5m" },
    {
      name: "keep",
      type: "int",
      help: `snapshots kept (1…${KEEP_MAX})`,
      default: 3,
      placeholder: "N",
    },
    { name: "once", type: "bool", help: "take one snapshot and exit (1 when it fails)" },
    METRICS_LISTEN_FLAG,
    {
      name: "work-dir",
      type: "string",
      help: "folder for the uncompressed copy (default: the LDB's folder)",
      placeholder: "DIR",
    },
    {
      name: "snapshot-token",
      type: "string",
      help: "bearer token for an http(s) snapshot URL",
      placeholder: "TOKEN",
    },
  ],
  run: async (opts) => {
    const keep = Number(opts.keep);
    if (!Number.isInteger(keep) || keep < 1 || keep > KEEP_MAX) {
      throw new UsageError(`--keep must be 1…${KEEP_MAX}, got ${opts.keep}`);
    }
    const intervalMs = Number(opts.interval);
    if (intervalMs < INTERVAL_MS_MIN) {
      throw new UsageError(`--interval must be at least ${INTERVAL_MS_MIN}ms`);
    }
    const metrics = supervisorMetrics();
    const supervisor = new Supervisor({
      onCycle: metrics.observe,
      ldbPath: String(opts.ldb),
      target: target(opts),
      keep,
      intervalMs,
      workDir: opts.workDir ? String(opts.workDir) : undefined,
    });
    if (opts.once) {
      const result = await supervisor.snapshotOnce();
      console.log(JSON.stringify(result));
      return result.kind === "failed" ? 1 : 0;
    }
    const metricsAbort = new AbortController();
    const server = serveMetrics(
      opts.listen as string | undefined,
      metrics.registry,
      metricsAbort.signal,
    );
    const stop = () => supervisor.stop();
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    try {
      await supervisor.run();
      return 0;
    } finally {
      metricsAbort.abort();
      await server?.finished;
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
    }
  },
};

/** The `ctl bootstrap` command. */
export const bootstrapCommand: CommandSpec = {
  name: "bootstrap",
  summary: "install the newest published LDB snapshot",
  description: "Downloads the newest snapshot from --url (file:///DIR, http(s)://PREFIX/ with " +
    "latest.json, or an executive's http(s)://HOST/v1/snapshot), verifies its SHA-256, " +
    "decompresses it beside the LDB, checks it is an LDB and renames it into place. Prints the " +
    "seq to replay the ledger from. Exit 1 after the last failed try (the reflector then " +
    "replays the whole ledger).",
  flags: [
    { name: "url", type: "string", help: "where snapshots are published", required: true },
    {
      name: "ldb",
      type: "string",
      help: "LDB file to create",
      required: true,
      placeholder: "FILE",
    },
    { name: "retries", type: "int", help: `tries in all (1…${RETRIES_MAX})`, default: 5 },
    { name: "overwrite", type: "bool", help: "replace an existing LDB (stop its reflector first)" },
  ],
  run: async (opts) => {
    const retries = Number(opts.retries);
    if (!Number.isInteger(retries) || retries < 1 || retries > RETRIES_MAX) {
      throw new UsageError(`--retries must be 1…${RETRIES_MAX}, got ${opts.retries}`);
    }
    const progress = terminalProgress();
    try {
      const result = await bootstrapLdb({
        url: String(opts.url),
        ldbPath: String(opts.ldb),
        retries,
        overwrite: Boolean(opts.overwrite),
        onProgress: progress.onProgress,
      });
      progress.stop();
      log("bootstrap").info(
        "Installed {ldb} at seq {seq} from {source} ({sizeBytes} bytes, {durationMs} ms)",
        { ldb: String(opts.ldb), ...result, durationMs: Math.round(result.durationMs) },
      );
      console.log(JSON.stringify({ seq: result.seq, attempts: result.attempts }));
      return 0;
    } catch (e) {
      progress.stop();
      if (e instanceof BootstrapError && e.code === "bad_url") throw new UsageError(e.message);
      if (!(e instanceof BootstrapError)) throw e;
      console.error(`Error: ${e.message} (${e.code})`);
      return 1;
    }
  },
};
