/**
 * The ledger as reflectors consume it, from any executive (applied entries are committed):
 * - `GET /v1/ledger?after=SEQ&limit=N[&wait_ms=MS]` → `{"entries":[…],"lastSeq":N}`, long-polling
 *   up to `wait_ms` when nothing follows SEQ yet;
 * - `GET /v1/ledger/stream?after=SEQ` → NDJSON: one LedgerEntry per line as entries commit, and
 *   `{"heartbeat":lastSeq}` when idle, so a reflector sees entries with no polling delay.
 */
import type { Hono } from "hono";
import { CtlError } from "../sor/errors.ts";
import type { ExecutiveDeps } from "./deps.ts";
import { intParam } from "./request.ts";
import type { ExecutiveEnv } from "./app.ts";

/** Entries per `GET /v1/ledger` page by default, and at most. */
export const LEDGER_PAGE_DEFAULT = 100;
export const LEDGER_PAGE_MAX = 1000;
/** Longest long-poll. */
export const LEDGER_WAIT_MAX_MS = 30_000;
/** Entries read per stream chunk. */
export const STREAM_BATCH_MAX = 500;

const encoder = new TextEncoder();

/**
 * Refuses a read from `after` when the entries right after it were pruned by the retention window:
 * a gap must never be served. The reader bootstraps from `GET /v1/snapshot` instead.
 */
function assertRetained(deps: ExecutiveDeps, after: number): void {
  const first = deps.sor.firstSeq();
  if (first > after + 1) {
    throw new CtlError(
      "ledger_gone",
      `Cannot read the ledger after seq ${after}: entries before seq ${first} are no longer ` +
        `retained; bootstrap from a snapshot (GET /v1/snapshot) and resume from its seq`,
    );
  }
}

/** Registers the ledger routes on `app`. */
export function registerLedgerRoutes(
  app: Hono<ExecutiveEnv>,
  deps: ExecutiveDeps,
  options: { heartbeatMs: number },
): void {
  app.get("/v1/ledger", async (c) => {
    const after = intParam(c.req.query("after"), "after", 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(c.req.query("limit"), "limit", LEDGER_PAGE_DEFAULT, LEDGER_PAGE_MAX);
    const waitMs = intParam(c.req.query("wait_ms"), "wait_ms", 0, LEDGER_WAIT_MAX_MS);
    assertRetained(deps, after);
    let entries = deps.sor.ledger(after, limit);
    if (entries.length === 0 && waitMs > 0 && limit > 0) {
      await deps.waitForSeq(after + 1, waitMs);
      entries = deps.sor.ledger(after, limit);
    }
    return c.json({ entries, lastSeq: deps.sor.lastSeq() });
  });

  app.get("/v1/ledger/stream", (c) => {
    let cursor = intParam(c.req.query("after"), "after", 0, Number.MAX_SAFE_INTEGER);
    assertRetained(deps, cursor);
    let cancelled = false;
    let first = true;
    const stream = new ReadableStream<Uint8Array>({
      // Pull-based: the next chunk is produced only when the client has taken the last one.
      async pull(controller) {
        for (;;) {
          // A client that goes away cancels the body stream (not the request signal, which
          // Deno.serve also aborts on successful responses).
          if (cancelled) {
            controller.close();
            return;
          }
          const entries = deps.sor.ledger(cursor, STREAM_BATCH_MAX);
          if (entries.length > 0) {
            cursor = entries[entries.length - 1].seq;
            controller.enqueue(
              encoder.encode(entries.map((e) => JSON.stringify(e) + "\n").join("")),
            );
            first = false;
            return;
          }
          if (!first) await deps.waitForSeq(cursor + 1, options.heartbeatMs);
          first = false;
          if (deps.sor.lastSeq() <= cursor) {
            controller.enqueue(
              encoder.encode(JSON.stringify({ heartbeat: deps.sor.lastSeq() }) + "\n"),
            );
            return;
          }
        }
      },
      cancel() {
        cancelled = true;
      },
    });
    return new Response(stream, {
      headers: { "content-type": "application/x-ndjson", "cache-control": "no-store" },
    });
  });
}
