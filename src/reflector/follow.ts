/**
 * A reflector that bootstraps: when the LDB is missing it installs a snapshot first (falling back
 * to a full replay of the ledger when none can be had); when the executives no longer hold the
 * ledger after its seq (410, behind the retention window) it installs a newer snapshot and
 * follows on from that snapshot's seq.
 */
import { bootstrapLdb, type BootstrapResult } from "../bootstrap/bootstrap.ts";
import type { BootstrapProgress } from "../bootstrap/bootstrap.ts";
import { exists } from "../util/durable_file.ts";
import { log } from "../util/log.ts";
import { LedgerSourceError } from "./ledger_source.ts";
import { Reflector, type ReflectorOptions } from "./reflector.ts";

/** How a bootstrapping reflector runs. */
export interface FollowOptions {
  reflector: ReflectorOptions;
  /** Where snapshots are published (`file:///DIR`, `http(s)://…`); tried first. */
  bootstrapUrl?: string;
  /** Bootstrap tries per source. */
  retries?: number;
  onProgress?: (p: BootstrapProgress) => void;
  /** Called with each Reflector started (the status endpoint follows the current one). */
  onReflector?: (r: Reflector) => void;
  /** Stops following. */
  signal: AbortSignal;
}

/** Tries each source in turn; returns the first success or null. */
async function bootstrapFrom(
  sources: string[],
  o: FollowOptions,
  overwrite: boolean,
): Promise<BootstrapResult | null> {
  const logger = log("reflector");
  for (const url of sources) {
    try {
      const result = await bootstrapLdb({
        url,
        ldbPath: o.reflector.ldbPath,
        overwrite,
        retries: o.retries ?? 5,
        onProgress: o.onProgress,
        signal: o.signal,
      });
      logger.info("Bootstrapped the LDB from {url} at seq {seq} ({bytes} bytes, {ms} ms)", {
        url,
        seq: result.seq,
        bytes: result.sizeBytes,
        ms: Math.round(result.durationMs),
      });
      return result;
    } catch (e) {
      if (o.signal.aborted) return null;
      logger.warn("No snapshot from {url}: {error}", { url, error: (e as Error).message });
    }
  }
  return null;
}

/** Follows the ledger until `signal` aborts; rejects when neither the ledger nor a snapshot can
 * bring the LDB forward. */
export async function followWithBootstrap(o: FollowOptions): Promise<void> {
  const logger = log("reflector");
  const executiveSnapshots = o.reflector.executives.map((u) =>
    `${u.replace(/\/+$/, "")}/v1/snapshot`
  );
  if (o.bootstrapUrl && !(await exists(o.reflector.ldbPath))) {
    const done = await bootstrapFrom([o.bootstrapUrl], o, false);
    if (!done && !o.signal.aborted) {
      logger.warn("No snapshot could be installed: replaying the whole ledger instead");
    }
  }
  while (!o.signal.aborted) {
    const reflector = new Reflector(o.reflector);
    o.onReflector?.(reflector);
    const stop = () => reflector.stop();
    o.signal.addEventListener("abort", stop);
    try {
      await reflector.run();
      return;
    } catch (e) {
      if (!(e instanceof LedgerSourceError && e.code === "ledger_gone")) throw e;
      logger.warn("The LDB is behind the ledger retention window: bootstrapping from a snapshot");
      const sources = o.bootstrapUrl ? [o.bootstrapUrl, ...executiveSnapshots] : executiveSnapshots;
      const done = await bootstrapFrom(sources, o, true);
      if (!done) throw e;
    } finally {
      o.signal.removeEventListener("abort", stop);
    }
  }
}
