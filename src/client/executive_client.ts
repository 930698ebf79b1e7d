/**
 * A typed HTTP client for the executive API, for admin tools, writers and tests.
 *
 * It spreads over several executive URLs: a connection error, a timeout or a 503 (no leader
 * yet, leader changing) moves on to the next URL after a short backoff, up to `attempts`
 * tries. Every write carries an `Idempotency-Key` (generated unless given) so that a retry
 * after a lost reply returns the first result instead of applying twice.
 */
import type { FieldTuple, LedgerEntry } from "../ledger/types.ts";
import type { TableSchema } from "../sor/validate.ts";

/** How to reach and authenticate to the executives. */
export interface ExecutiveClientOptions {
  /** Base URLs, e.g. `http://127.0.0.1:7001`; tried in turn. */
  urls: string[];
  adminToken?: string;
  writer?: { name: string; secret: string };
  /** Tries per request across all URLs (default 6). */
  attempts?: number;
  /** First backoff between tries; doubles up to 2 s (default 100). */
  retryDelayMs?: number;
  /** Per-try timeout (default 15000). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** An error answer from the executive, with its stable code. */
export class ExecutiveHttpError extends Error {
  override name = "ExecutiveHttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The executives could not be reached (or had no leader) within the tries allowed. */
export class ExecutiveUnavailableError extends Error {
  override name = "ExecutiveUnavailableError";
}

/** The reply to every write: the ledger seq the change is ordered at. */
export interface WriteResult {
  seq: number;
}

/** A mutation in ctlstore's request shape. */
export interface Mutation {
  table: string;
  delete?: boolean;
  values: Record<string, unknown>;
}

/** Table limits as `GET /limits/tables` reports them. */
export interface TableLimitsReply {
  global: { "max-size": number; "warn-size": number };
  tables: { family: string; table: string; "max-size": number; "warn-size": number }[];
}

/** Writer limits as `GET /limits/writers` reports them. */
export interface WriterLimitsReply {
  global: { amount: number; period: string };
  writers: { writer: string; "rate-limit": { amount: number; period: string } }[];
}

interface RequestSpec {
  method: string;
  path: string;
  auth: "admin" | "writer" | "none";
  json?: unknown;
  raw?: Uint8Array;
  idempotencyKey?: string;
}

const RETRY_DELAY_MAX_MS = 2000;

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** A client for one cluster of executives. */
export class ExecutiveClient {
  readonly #urls: string[];
  readonly #options: ExecutiveClientOptions;
  #next = 0;

  constructor(options: ExecutiveClientOptions) {
    if (options.urls.length === 0) throw new Error("ExecutiveClient: no executive URLs given");
    this.#urls = options.urls.map((u) => u.replace(/\/+$/, ""));
    this.#options = options;
  }

  async #request(spec: RequestSpec): Promise<Response> {
    const o = this.#options;
    const attempts = Math.max(1, o.attempts ?? 6);
    const fetchFn = o.fetch ?? fetch;
    const headers = new Headers();
    if (spec.auth === "admin") {
      if (!o.adminToken) throw new Error(`${spec.method} ${spec.path} needs an admin token`);
      headers.set("authorization", `Bearer ${o.adminToken}`);
    } else if (spec.auth === "writer") {
      if (!o.writer) throw new Error(`${spec.method} ${spec.path} needs writer credentials`);
      headers.set("ctlstore-writer", o.writer.name);
      headers.set("ctlstore-secret", o.writer.secret);
    }
    let body: Uint8Array<ArrayBuffer> | string | undefined;
    if (spec.json !== undefined) {
      headers.set("content-type", "application/json");
      body = JSON.stringify(spec.json);
    } else if (spec.raw) {
      headers.set("content-type", "application/octet-stream");
      body = new Uint8Array(spec.raw);
    }
    if (spec.method !== "GET") {
      headers.set("idempotency-key", spec.idempotencyKey ?? crypto.randomUUID());
    }
    let delayMs = o.retryDelayMs ?? 100;
    let lastProblem = "";
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const base = this.#urls[this.#next % this.#urls.length];
      let retryAfterMs = 0;
      try {
        const res = await fetchFn(base + spec.path, {
          method: spec.method,
          headers,
          body,
          signal: AbortSignal.timeout(o.timeoutMs ?? 15_000),
        });
        if (res.status !== 503) return res;
        lastProblem = `${base}: 503 ${await res.text()}`;
        retryAfterMs = Number(res.headers.get("retry-after") ?? "0") * 1000;
      } catch (e) {
        lastProblem = `${base}: ${(e as Error).message}`;
      }
      // Try the next executive; it may be the leader, or know it.
      this.#next++;
      if (attempt < attempts) {
        const waitMs = Math.min(Math.max(delayMs, retryAfterMs), RETRY_DELAY_MAX_MS);
        await new Promise((r) => setTimeout(r, waitMs));
        delayMs = Math.min(delayMs * 2, RETRY_DELAY_MAX_MS);
      }
    }
    throw new ExecutiveUnavailableError(
      `${spec.method} ${spec.path} failed after ${attempts} tries (last: ${lastProblem})`,
    );
  }

  async #json<T>(spec: RequestSpec): Promise<T> {
    const res = await this.#request(spec);
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: reported below with the raw text.
    }
    if (!res.ok) {
      const err = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ExecutiveHttpError(
        res.status,
        err?.code ?? "unknown",
        err?.message ?? `${spec.method} ${spec.path}: HTTP ${res.status} ${text.slice(0, 200)}`,
      );
    }
    return parsed as T;
  }

  #enc(name: string): string {
    return encodeURIComponent(name);
  }

  // --- schema ---------------------------------------------------------------------------------

  createFamily(family: string): Promise<WriteResult> {
    return this.#json({ method: "POST", path: `/families/${this.#enc(family)}`, auth: "admin" });
  }

  families(): Promise<string[]> {
    return this.#json<{ families: string[] }>({ method: "GET", path: "/v1/families", auth: "none" })
      .then((r) => r.families);
  }

  createTable(
    family: string,
    table: string,
    fields: FieldTuple[],
    keyFields: string[],
  ): Promise<WriteResult> {
    return this.#json({
      method: "POST",
      path: `/families/${this.#enc(family)}/tables/${this.#enc(table)}`,
      auth: "admin",
      json: { fields, keyFields },
    });
  }

  /** Creates several tables atomically. */
  createTables(tables: TableSchema[]): Promise<WriteResult> {
    return this.#json({ method: "POST", path: "/tables", auth: "admin", json: tables });
  }

  addFields(family: string, table: string, fields: FieldTuple[]): Promise<WriteResult> {
    return this.#json({
      method: "PUT",
      path: `/families/${this.#enc(family)}/tables/${this.#enc(table)}`,
      auth: "admin",
      json: { fields },
    });
  }

  dropTable(family: string, table: string): Promise<WriteResult> {
    return this.#json({
      method: "DELETE",
      path: `/families/${this.#enc(family)}/tables/${this.#enc(table)}`,
      auth: "admin",
    });
  }

  clearTable(family: string, table: string): Promise<WriteResult> {
    return this.#json({
      method: "DELETE",
      path: `/clear-rows/families/${this.#enc(family)}/tables/${this.#enc(table)}`,
      auth: "admin",
    });
  }

  clearFamily(family: string): Promise<WriteResult> {
    return this.#json({
      method: "DELETE",
      path: `/clear-rows/families/${this.#enc(family)}`,
      auth: "admin",
    });
  }

  tableSchema(family: string, table: string): Promise<TableSchema> {
    return this.#json({
      method: "GET",
      path: `/schema/table/${this.#enc(family)}/${this.#enc(table)}`,
      auth: "none",
    });
  }

  familySchema(family: string): Promise<TableSchema[]> {
    return this.#json({ method: "GET", path: `/schema/family/${this.#enc(family)}`, auth: "none" });
  }

  // --- writers, cookies, mutations ------------------------------------------------------------

  registerWriter(writer: string, secret: string): Promise<WriteResult> {
    return this.#json({
      method: "POST",
      path: `/writers/${this.#enc(writer)}`,
      auth: "admin",
      raw: new TextEncoder().encode(secret),
    });
  }

  async getCookie(): Promise<Uint8Array> {
    const res = await this.#request({ method: "GET", path: "/cookie", auth: "writer" });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      throw new ExecutiveHttpError(
        res.status,
        body?.error?.code ?? "unknown",
        body?.error?.message ?? `GET /cookie: HTTP ${res.status}`,
      );
    }
    return new Uint8Array(await res.arrayBuffer());
  }

  setCookie(cookie: Uint8Array): Promise<WriteResult> {
    return this.#json({ method: "POST", path: "/cookie", auth: "writer", raw: cookie });
  }

  /** Applies up to 100 mutations atomically, optionally conditional on the stored cookie. */
  mutate(
    family: string,
    mutations: Mutation[],
    options: { cookie?: Uint8Array; checkCookie?: Uint8Array; idempotencyKey?: string } = {},
  ): Promise<WriteResult> {
    const json: Record<string, unknown> = { mutations };
    if (options.cookie) json.cookie = toBase64(options.cookie);
    if (options.checkCookie) json.check_cookie = toBase64(options.checkCookie);
    return this.#json({
      method: "POST",
      path: `/families/${this.#enc(family)}/mutations`,
      auth: "writer",
      json,
      idempotencyKey: options.idempotencyKey,
    });
  }

  // --- limits ---------------------------------------------------------------------------------

  tableLimits(): Promise<TableLimitsReply> {
    return this.#json({ method: "GET", path: "/limits/tables", auth: "admin" });
  }

  setTableLimit(
    family: string,
    table: string,
    maxSizeBytes: number,
    warnSizeBytes: number,
  ): Promise<WriteResult> {
    return this.#json({
      method: "POST",
      path: `/limits/tables/${this.#enc(family)}/${this.#enc(table)}`,
      auth: "admin",
      json: { "max-size": maxSizeBytes, "warn-size": warnSizeBytes },
    });
  }

  deleteTableLimit(family: string, table: string): Promise<WriteResult> {
    return this.#json({
      method: "DELETE",
      path: `/limits/tables/${this.#enc(family)}/${this.#enc(table)}`,
      auth: "admin",
    });
  }

  writerLimits(): Promise<WriterLimitsReply> {
    return this.#json({ method: "GET", path: "/limits/writers", auth: "admin" });
  }

  setWriterLimit(writer: string, amount: number, period = "1m"): Promise<WriteResult> {
    return this.#json({
      method: "POST",
      path: `/limits/writers/${this.#enc(writer)}`,
      auth: "admin",
      json: { amount, period },
    });
  }

  deleteWriterLimit(writer: string): Promise<WriteResult> {
    return this.#json({
      method: "DELETE",
      path: `/limits/writers/${this.#enc(writer)}`,
      auth: "admin",
    });
  }

  // --- cluster membership ---------------------------------------------------------------------

  /** Adds a member (as a learner, then promoted to voter unless `voter` is false). */
  addMember(
    id: string,
    url: string,
    voter = true,
  ): Promise<{ id: string; url: string; voter: boolean }> {
    return this.#json({
      method: "POST",
      path: "/v1/cluster/members",
      auth: "admin",
      json: { id, url, voter },
    });
  }

  /** Makes a caught-up learner a voter. */
  promoteMember(id: string): Promise<{ id: string; voter: boolean }> {
    return this.#json({
      method: "POST",
      path: `/v1/cluster/members/${this.#enc(id)}/promote`,
      auth: "admin",
    });
  }

  removeMember(id: string): Promise<{ id: string; removed: boolean }> {
    return this.#json({
      method: "DELETE",
      path: `/v1/cluster/members/${this.#enc(id)}`,
      auth: "admin",
    });
  }

  transferLeader(id: string): Promise<{ leader: string }> {
    return this.#json({ method: "POST", path: "/v1/cluster/leader", auth: "admin", json: { id } });
  }

  // --- health and ledger ----------------------------------------------------------------------

  /** `GET /status` of the first reachable executive (503 bodies count as answers here). */
  async status(): Promise<Record<string, unknown>> {
    const res = await this.#request({ method: "GET", path: "/status", auth: "none" });
    return await res.json();
  }

  ledger(
    afterSeq: number,
    options: { limit?: number; waitMs?: number } = {},
  ): Promise<{ entries: LedgerEntry[]; lastSeq: number }> {
    const q = new URLSearchParams({ after: String(afterSeq) });
    if (options.limit !== undefined) q.set("limit", String(options.limit));
    if (options.waitMs !== undefined) q.set("wait_ms", String(options.waitMs));
    return this.#json({ method: "GET", path: `/v1/ledger?${q}`, auth: "none" });
  }
}
