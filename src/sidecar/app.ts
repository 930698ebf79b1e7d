/**
 * The sidecar: HTTP over the reader library for apps that cannot link it, with ctlstore's routes
 * and shapes (so ctlstore sidecar clients keep working) plus ours: `?min_seq=N` read-your-writes,
 * `/health` (staleness) and `/metrics`. Built as a value over an LDB source; only cmd/ listens.
 */
import { type Context, Hono } from "hono";
import { Buffer } from "node:buffer";
import { Histogram, Registry } from "prom-client";
import { rowToJson } from "../ldb/json.ts";
import { type KeyValue, type LdbReader, openLdb, PREFIX_ROWS_MAX } from "../ldb/reader.ts";
import { errorBody, onSidecarError, SidecarError } from "./errors.ts";

/** Largest request body (a key of a few parts). */
export const REQUEST_BODY_BYTES_MAX = 64 * 1024;
/** Most key parts in a request. */
const KEY_PARTS_MAX = 64;

export interface SidecarOptions {
  /** The reader; `openLazily` gives one that opens the file once it exists. */
  ldb: LdbSource;
  /** More rows than this from a prefix read answer 416 (ctlstore's `max-rows`). */
  maxRows: number;
  /** Longest wait for `?min_seq=N` before answering 504. */
  minSeqWaitMaxMs: number;
  /** `/health` answers 503 when the ledger latency is above this. */
  healthMaxLatencyMs: number;
  /** Where `/metrics` registers (a fresh registry by default). */
  registry?: Registry;
}

/** Gives the reader, or throws `ldb_unavailable` while there is no LDB yet. */
export interface LdbSource {
  reader(): LdbReader;
}

/** An LDB source that opens the file on first use and retries until it exists. */
export function openLazily(path: string): LdbSource & { close(): void } {
  let reader: LdbReader | undefined;
  return {
    // A request's HTTP round trip costs far more than the read lock a shared snapshot saves, so
    // every request reads the latest commit.
    reader: () => (reader ??= openLdb(path, { snapshotMs: 0 })),
    close: () => reader?.close(),
  };
}

/** Builds the sidecar app. */
export function createSidecarApp(options: SidecarOptions): Hono {
  const { ldb } = options;
  if (!(options.maxRows >= 1 && options.maxRows < PREFIX_ROWS_MAX)) {
    throw new RangeError(`maxRows ${options.maxRows} is outside 1..${PREFIX_ROWS_MAX - 1}`);
  }
  const registry = options.registry ?? new Registry();
  const latency = new Histogram({
    name: "ctl_sidecar_request_duration_seconds",
    help: "Sidecar request latency by route and status",
    labelNames: ["route", "status"],
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1, 1, 5],
    registers: [registry],
  });

  const app = new Hono();
  app.onError(onSidecarError);
  app.notFound((c) =>
    c.json(errorBody("not_found", `No route ${c.req.method} ${c.req.path}`), 404)
  );
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    latency.observe(
      { route: c.req.routePath, status: String(c.res.status) },
      (performance.now() - started) / 1000,
    );
  });
  // Read-your-writes: `?min_seq=N` waits (bounded) until the LDB has applied seq N.
  app.use(async (c, next) => {
    const minSeq = c.req.query("min_seq");
    if (minSeq !== undefined) {
      if (!/^\d{1,15}$/.test(minSeq)) {
        throw new SidecarError(400, "bad_request", `min_seq "${minSeq}" is not a seq`);
      }
      await ldb.reader().waitForSeq(Number(minSeq), options.minSeqWaitMaxMs);
    }
    await next();
  });

  app.post("/get-row-by-key/:family/:table", async (c) => {
    const key = parseKey(await readJson(c.req.raw));
    const row = ldb.reader().getRowByKey(c.req.param("family"), c.req.param("table"), ...key);
    if (!row) {
      c.header("X-Ctlstore", "Not Found");
      return c.json(errorBody("not_found", "No row with this key"), 404);
    }
    return c.json(rowToJson(row));
  });

  app.post("/get-rows-by-key-prefix/:family/:table", async (c) => {
    const key = parseKey(await readJson(c.req.raw));
    const page = ldb.reader().getRowsByKeyPrefix(c.req.param("family"), c.req.param("table"), key, {
      limit: options.maxRows + 1,
    });
    if (page.rows.length > options.maxRows) {
      throw new SidecarError(
        416,
        "too_many_rows",
        `More than ${options.maxRows} rows match this prefix (max-rows)`,
      );
    }
    return c.json(page.rows.map(rowToJson));
  });

  app.get("/get-ledger-latency", (c) => {
    const ms = ldb.reader().ledgerLatencyMs();
    if (ms === undefined) {
      throw new SidecarError(503, "no_ledger_updates", "The LDB has not applied any entry yet");
    }
    return c.json({ value: ms / 1000, unit: "seconds" });
  });

  // ctlstore answers 200 when the LDB answers a query, else 500; kept as is for its clients.
  const ping = (c: Context) => {
    let ok = false;
    try {
      ok = ldb.reader().ping();
    } catch {
      ok = false;
    }
    return ok
      ? c.json({ status: "ok" }, 200)
      : c.json(errorBody("ldb_unavailable", "The LDB cannot be read"), 500);
  };
  app.get("/healthcheck", ping);
  app.get("/ping", ping);

  // Ours: staleness. Healthy when the LDB is readable and its ledger latency is within bounds
  // (the heartbeat writes every 15 s, so an idle cluster stays fresh).
  app.get("/health", (c) => {
    const reader = ldb.reader();
    const seq = reader.lastSeq();
    const latencyMs = reader.ledgerLatencyMs();
    const fresh = latencyMs !== undefined && latencyMs <= options.healthMaxLatencyMs;
    return c.json({
      status: fresh ? "ok" : "stale",
      seq,
      ledgerLatencyMs: latencyMs ?? null,
      maxLatencyMs: options.healthMaxLatencyMs,
    }, fresh ? 200 : 503);
  });

  app.get("/metrics", async (c) => {
    return c.body(await registry.metrics(), 200, { "content-type": registry.contentType });
  });
  return app;
}

async function readJson(req: Request): Promise<unknown> {
  const text = await readBody(req);
  try {
    return JSON.parse(text);
  } catch {
    throw new SidecarError(400, "bad_request", "The body is not JSON");
  }
}

/**
 * The body as text, at most REQUEST_BODY_BYTES_MAX bytes (413 beyond). A declared length is
 * checked up front; a chunked body is counted as it streams. (Cheaper than hono's bodyLimit,
 * which wraps every body in a counting stream: that doubled the cost of a point read.)
 */
async function readBody(req: Request): Promise<string> {
  const tooLarge = () =>
    new SidecarError(413, "body_too_large", `body over ${REQUEST_BODY_BYTES_MAX} bytes`);
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    if (Number(declared) > REQUEST_BODY_BYTES_MAX) throw tooLarge();
    return await req.text();
  }
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let sizeBytes = 0;
  for await (const chunk of req.body) {
    sizeBytes += chunk.length;
    if (sizeBytes > REQUEST_BODY_BYTES_MAX) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** `{"key":[{"value":X} | {"binary":"<base64>"}, …]}` → key parts. */
export function parseKey(body: unknown): KeyValue[] {
  const parts = (body as { key?: unknown } | null)?.key;
  if (!Array.isArray(parts)) {
    throw new SidecarError(400, "bad_request", 'The body must be {"key":[{"value":…}, …]}');
  }
  if (parts.length > KEY_PARTS_MAX) {
    throw new SidecarError(400, "bad_request", `A key has at most ${KEY_PARTS_MAX} parts`);
  }
  return parts.map((part, i) => {
    if (part && typeof part === "object") {
      if ("binary" in part && typeof part.binary === "string") {
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(part.binary)) {
          throw new SidecarError(400, "bad_request", `key[${i}].binary is not base64`);
        }
        return new Uint8Array(Buffer.from(part.binary, "base64"));
      }
      if ("value" in part && (typeof part.value === "string" || typeof part.value === "number")) {
        return part.value;
      }
    }
    throw new SidecarError(
      400,
      "bad_request",
      `key[${i}] must be {"value": string|number} or {"binary": base64}`,
    );
  });
}
