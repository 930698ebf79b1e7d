/**
 * The executive's HTTP API: ctlstore's routes and shapes, plus ours (`/v1/...`, `/status`).
 *
 * Built as a value over `ExecutiveDeps` and tested with `app.request()`. Every expected failure
 * is a `CtlError`, turned into status + `{"error":{"code","message"}}` in `onError` alone.
 * Writes reaching a follower are forwarded to the leader before anything else happens to them.
 */
import { type Context, Hono } from "hono";
import {
  type PreparedMutation,
  prepareMutation,
  type SorCommand,
  type SorCommandBody,
} from "../sor/commands.ts";
import { CtlError } from "../sor/errors.ts";
import { hashSecret } from "../sor/secrets.ts";
import { DEFAULT_LIMITS } from "../sor/state_machine.ts";
import {
  cookieBytes,
  decodeBase64,
  familyName,
  fieldTuples,
  idempotencyKey,
  rawMutations,
  rejectUnknownKeys,
  rowsPerMinute,
  tableDefinition,
  tableName,
  type TableSchema,
  VALUE_LIMITS,
  writerName,
  writerSecret,
} from "../sor/validate.ts";
import { log } from "../util/log.ts";
import type { ExecutiveDeps } from "./deps.ts";
import { FORWARDED_HEADER, forwardToLeader } from "./forward.ts";
import { registerLedgerRoutes } from "./ledger_routes.ts";
import {
  BODY_BYTES_MAX,
  bodyText,
  parseJson,
  parseJsonObject,
  readBodyCapped,
  requireAdmin,
  requireWriter,
} from "./request.ts";
import { mark } from "../util/timeline.ts";

/** Tunables of the HTTP layer (tests shorten the heartbeat). */
export interface ExecutiveAppOptions {
  /** Idle interval between `{"heartbeat":N}` lines on the ledger stream. */
  streamHeartbeatMs?: number;
  /** Seconds a client should wait before retrying a 503. */
  retryAfterSeconds?: number;
  /**
   * How long a write waits for a leader to be known (an election in progress) before it is
   * answered 503; about one election timeout. Default 1000.
   */
  leaderWaitMs?: number;
}

/** Hono environment: the body of a write request, read once (capped) by the write middleware. */
export type ExecutiveEnv = { Variables: { body: Uint8Array<ArrayBuffer> } };

type Ctx = Context<ExecutiveEnv>;

const WRITE_METHODS = new Set(["POST", "PUT", "DELETE", "PATCH"]);

/** Builds the executive HTTP app over `deps`. */
export function createExecutiveApp(
  deps: ExecutiveDeps,
  options: ExecutiveAppOptions = {},
): Hono<ExecutiveEnv> {
  if (deps.adminToken.length === 0) throw new Error("createExecutiveApp: adminToken is empty");
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const app = new Hono<ExecutiveEnv>();
  const logger = log("executive", "http");

  app.onError((err, c) => {
    if (err instanceof CtlError) {
      if (err.status === 503) c.header("Retry-After", retryAfter);
      return c.json({ error: { code: err.code, message: err.message } }, err.status as 400);
    }
    logger.error("Unexpected error serving {method} {path}: {error}", {
      method: c.req.method,
      path: c.req.path,
      error: err,
    });
    return c.json({
      error: { code: "internal", message: "Internal error (a bug): see the executive log" },
    }, 500);
  });

  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: `No route ${c.req.method} ${c.req.path}` } }, 404)
  );

  // Writes: read the body once (capped), then forward to the leader if we are not it.
  app.use("*", async (c, next) => {
    if (!WRITE_METHODS.has(c.req.method)) return await next();
    const body = await readBodyCapped(c.req.raw, BODY_BYTES_MAX);
    if (!deps.isLeader() && !deps.leaderUrl()) {
      // An election is probably under way: give it about one election timeout.
      const deadline = Date.now() + (options.leaderWaitMs ?? 1000);
      while (!deps.isLeader() && !deps.leaderUrl() && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    if (!deps.isLeader()) {
      if (c.req.header(FORWARDED_HEADER)) {
        throw new CtlError(
          "no_leader",
          `Cannot serve ${c.req.method} ${c.req.path}: forwarded to a node that is not the leader`,
        );
      }
      const leader = deps.leaderUrl();
      if (!leader) {
        throw new CtlError(
          "no_leader",
          `Cannot serve ${c.req.method} ${c.req.path}: no leader is known`,
        );
      }
      return forwardToLeader(c.req.raw, body, leader, deps.fetch ?? fetch);
    }
    c.set("body", body);
    await next();
  });

  const admin = (c: Ctx) => requireAdmin(c.req.raw.headers, deps.adminToken);

  const destructive = (action: string) => {
    if (!deps.destructiveChanges) {
      throw new CtlError(
        "destructive_changes_disabled",
        `Cannot ${action}: destructive changes are disabled on this executive`,
      );
    }
  };

  /** Stamps, proposes and unwraps a command; returns the ledger seq. */
  const propose = async (
    c: Ctx,
    principal: string,
    body: SorCommandBody,
    mutation?: PreparedMutation,
  ): Promise<number> => {
    const key = c.req.header("idempotency-key");
    const cmd: SorCommand = {
      ...body,
      ts: deps.now(),
      // Keys are scoped by principal; JSON keeps "a:b" + "c" apart from "a" + "b:c".
      ...(key !== undefined
        ? { idempotencyKey: JSON.stringify([principal, idempotencyKey(key)]) }
        : {}),
    };
    const result = await deps.propose(cmd, mutation);
    if (!result.ok) throw CtlError.fromBody(result.error);
    return result.seq;
  };

  // --- schema (admin) -------------------------------------------------------------------------

  app.post("/families/:family", async (c) => {
    admin(c);
    const family = familyName(c.req.param("family"));
    return c.json({ seq: await propose(c, "admin", { type: "create_family", family }) });
  });

  app.post("/families/:family/tables/:table", async (c) => {
    admin(c);
    const body = parseJsonObject(c.get("body"), "table definition");
    rejectUnknownKeys(body, ["fields", "keyFields"], "Invalid table definition");
    const schema = tableDefinition(
      c.req.param("family"),
      c.req.param("table"),
      body.fields,
      body.keyFields,
    );
    return c.json({ seq: await propose(c, "admin", { type: "create_tables", tables: [schema] }) });
  });

  app.put("/families/:family/tables/:table", async (c) => {
    admin(c);
    const family = familyName(c.req.param("family"));
    const table = tableName(c.req.param("table"));
    const body = parseJsonObject(c.get("body"), "field list");
    rejectUnknownKeys(body, ["fields"], "Invalid field list");
    const fields = fieldTuples(body.fields, `Cannot add fields to table "${table}"`);
    return c.json({
      seq: await propose(c, "admin", { type: "add_fields", family, table, fields }),
    });
  });

  app.delete("/families/:family/tables/:table", async (c) => {
    admin(c);
    const family = familyName(c.req.param("family"));
    const table = tableName(c.req.param("table"));
    destructive(`drop table "${table}"`);
    return c.json({ seq: await propose(c, "admin", { type: "drop_table", family, table }) });
  });

  app.delete("/clear-rows/families/:family/tables/:table", async (c) => {
    admin(c);
    const family = familyName(c.req.param("family"));
    const table = tableName(c.req.param("table"));
    destructive(`clear table "${table}"`);
    return c.json({ seq: await propose(c, "admin", { type: "clear_table", family, table }) });
  });

  app.delete("/clear-rows/families/:family", async (c) => {
    admin(c);
    const family = familyName(c.req.param("family"));
    destructive(`clear family "${family}"`);
    return c.json({ seq: await propose(c, "admin", { type: "clear_family", family }) });
  });

  app.post("/tables", async (c) => {
    admin(c);
    const body = parseJson(c.get("body"), "table list");
    if (!Array.isArray(body) || body.length === 0) {
      throw new CtlError("bad_request", "Invalid table list: expected a non-empty JSON array");
    }
    if (body.length > VALUE_LIMITS.tablesPerBatchMax) {
      throw new CtlError(
        "bad_request",
        `Cannot create ${body.length} tables: at most ${VALUE_LIMITS.tablesPerBatchMax} per request`,
      );
    }
    const tables: TableSchema[] = body.map((t, i) => {
      if (typeof t !== "object" || t === null || Array.isArray(t)) {
        throw new CtlError("bad_request", `Invalid table list: item ${i} is not an object`);
      }
      const def = t as Record<string, unknown>;
      rejectUnknownKeys(def, ["family", "name", "fields", "keyFields"], `Invalid table ${i}`);
      return tableDefinition(def.family, def.name, def.fields, def.keyFields);
    });
    return c.json({ seq: await propose(c, "admin", { type: "create_tables", tables }) });
  });

  app.get("/schema/table/:family/:table", async (c) => {
    const family = familyName(c.req.param("family"));
    const table = tableName(c.req.param("table"));
    await deps.readBarrier();
    if (!deps.sor.hasFamily(family)) {
      throw new CtlError(
        "family_not_found",
        `Cannot read schema: family "${family}" does not exist`,
      );
    }
    const schema = deps.sor.tableSchema(family, table);
    if (!schema) {
      throw new CtlError(
        "table_not_found",
        `Cannot read schema: table "${table}" does not exist in family "${family}"`,
      );
    }
    return c.json(schema);
  });

  app.get("/schema/family/:family", async (c) => {
    const family = familyName(c.req.param("family"));
    await deps.readBarrier();
    if (!deps.sor.hasFamily(family)) {
      throw new CtlError(
        "family_not_found",
        `Cannot read schema: family "${family}" does not exist`,
      );
    }
    return c.json(deps.sor.familySchemas(family));
  });

  app.get("/v1/families", async (c) => {
    await deps.readBarrier();
    return c.json({ families: deps.sor.families() });
  });

  // --- writers and cookies ----------------------------------------------------------------------

  app.post("/writers/:writer", async (c) => {
    admin(c);
    const writer = writerName(c.req.param("writer"));
    const secret = writerSecret(bodyText(c.get("body"), "writer secret"));
    // Same secret again is a success; the salt differs per registration, so check it here.
    if (deps.sor.hasWriter(writer)) {
      if (deps.sor.verifyWriter(writer, secret)) return c.json({ seq: deps.sor.lastSeq() });
      throw new CtlError(
        "writer_exists",
        `Cannot register writer "${writer}": it exists with a different secret`,
      );
    }
    try {
      const seq = await propose(c, "admin", {
        type: "register_writer",
        writer,
        ...hashSecret(secret),
      });
      return c.json({ seq });
    } catch (e) {
      // A concurrent registration won the race: fine if it registered the same secret.
      if (
        e instanceof CtlError && e.code === "writer_exists" && deps.sor.verifyWriter(writer, secret)
      ) {
        return c.json({ seq: deps.sor.lastSeq() });
      }
      throw e;
    }
  });

  app.get("/cookie", async (c) => {
    await deps.readBarrier();
    const writer = requireWriter(c.req.raw.headers, deps.sor);
    const cookie = deps.sor.cookie(writer) ?? new Uint8Array();
    return c.body(new Uint8Array(cookie), 200, {
      "content-type": "application/octet-stream",
    });
  });

  app.post("/cookie", async (c) => {
    const writer = requireWriter(c.req.raw.headers, deps.sor);
    const cookie = cookieBytes(c.get("body"));
    const cookieBase64 = btoa(String.fromCharCode(...cookie));
    return c.json({
      seq: await propose(c, `writer:${writer}`, { type: "set_cookie", writer, cookieBase64 }),
    });
  });

  app.post("/families/:family/mutations", async (c) => {
    mark("http.in");
    const writer = requireWriter(c.req.raw.headers, deps.sor);
    const family = familyName(c.req.param("family"));
    const body = parseJsonObject(c.get("body"), "mutation request");
    rejectUnknownKeys(body, ["cookie", "check_cookie", "mutations"], "Invalid mutation request");
    const mutations = rawMutations(body.mutations ?? [], family);
    const cookie = optionalBase64(body.cookie, "cookie");
    const checkCookie = optionalBase64(body.check_cookie, "check_cookie");
    // Fail fast on the local schema; apply validates again against the schema at its position.
    if (!deps.sor.hasFamily(family)) {
      throw new CtlError(
        "family_not_found",
        `Cannot apply mutations: family "${family}" does not exist`,
      );
    }
    const prepared = prepareMutation(family, mutations, (t) => deps.sor.tableSchema(family, t));
    mark("propose");
    const seq = await propose(c, `writer:${writer}`, {
      type: "mutate",
      family,
      writer,
      mutations,
      ...(cookie !== undefined ? { cookieBase64: cookie } : {}),
      ...(checkCookie !== undefined ? { checkCookieBase64: checkCookie } : {}),
    }, prepared);
    // Tables past their warn size still accept writes; say so while there is room to act.
    const warnings: string[] = [];
    for (const table of new Set(mutations.map((m) => m.table.toLowerCase()))) {
      const size = deps.sor.tableSizeBytes(family, table);
      const limit = deps.sor.effectiveTableLimit(family, table);
      if (size > limit.warnSizeBytes) {
        warnings.push(
          `table "${table}" holds ${size} bytes, over its warn size of ${limit.warnSizeBytes} ` +
            `(max ${limit.maxSizeBytes})`,
        );
      }
    }
    mark("reply");
    return c.json(warnings.length > 0 ? { seq, warnings } : { seq });
  });

  // --- limits (admin) -------------------------------------------------------------------------

  const tableLimitJson = (
    l: { family: string; table: string; maxSizeBytes: number; warnSizeBytes: number },
  ) => ({
    family: l.family,
    table: l.table,
    "max-size": l.maxSizeBytes,
    "warn-size": l.warnSizeBytes,
  });
  const rate = (rowsPerMinute: number) => ({ amount: rowsPerMinute, period: "1m" });

  app.get("/limits/tables", async (c) => {
    admin(c);
    await deps.readBarrier();
    return c.json({
      global: {
        "max-size": DEFAULT_LIMITS.tableMaxSizeBytes,
        "warn-size": DEFAULT_LIMITS.tableWarnSizeBytes,
      },
      tables: deps.sor.tableLimits().map(tableLimitJson),
    });
  });

  app.get("/limits/tables/:family/:table", async (c) => {
    admin(c);
    const family = familyName(c.req.param("family"));
    const table = tableName(c.req.param("table"));
    await deps.readBarrier();
    const limit = deps.sor.tableLimit(family, table);
    if (!limit) {
      throw new CtlError(
        "limit_not_found",
        `No limit is set for table "${table}" in family "${family}"`,
      );
    }
    return c.json(tableLimitJson(limit));
  });

  app.post("/limits/tables/:family/:table", async (c) => {
    admin(c);
    const family = familyName(c.req.param("family"));
    const table = tableName(c.req.param("table"));
    const body = parseJsonObject(c.get("body"), "table limit");
    rejectUnknownKeys(body, ["max-size", "warn-size"], "Invalid table limit");
    const maxSizeBytes = body["max-size"] as number;
    const warnSizeBytes = body["warn-size"] as number;
    for (const [name, v] of [["max-size", maxSizeBytes], ["warn-size", warnSizeBytes]] as const) {
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
        throw new CtlError(
          "bad_request",
          `Invalid table limit: ${name} must be a positive integer`,
        );
      }
    }
    if (warnSizeBytes > maxSizeBytes) {
      throw new CtlError(
        "bad_request",
        `Invalid table limit: warn-size ${warnSizeBytes} exceeds max-size ${maxSizeBytes}`,
      );
    }
    const seq = await propose(c, "admin", {
      type: "set_table_limit",
      family,
      table,
      maxSizeBytes,
      warnSizeBytes,
    });
    return c.json({ seq });
  });

  app.delete("/limits/tables/:family/:table", async (c) => {
    admin(c);
    const family = familyName(c.req.param("family"));
    const table = tableName(c.req.param("table"));
    return c.json({
      seq: await propose(c, "admin", { type: "delete_table_limit", family, table }),
    });
  });

  app.get("/limits/writers", async (c) => {
    admin(c);
    await deps.readBarrier();
    return c.json({
      global: rate(DEFAULT_LIMITS.writerRowsPerMinute),
      writers: deps.sor.writerLimits().map((l) => ({
        writer: l.writer,
        "rate-limit": rate(l.rowsPerMinute),
      })),
    });
  });

  app.get("/limits/writers/:writer", async (c) => {
    admin(c);
    const writer = writerName(c.req.param("writer"));
    await deps.readBarrier();
    const limit = deps.sor.writerLimit(writer);
    if (!limit) throw new CtlError("limit_not_found", `No limit is set for writer "${writer}"`);
    return c.json({ writer, "rate-limit": rate(limit.rowsPerMinute) });
  });

  app.post("/limits/writers/:writer", async (c) => {
    admin(c);
    const writer = writerName(c.req.param("writer"));
    const body = parseJsonObject(c.get("body"), "writer limit");
    rejectUnknownKeys(body, ["amount", "period"], "Invalid writer limit");
    const perMinute = rowsPerMinute(body.amount, body.period ?? "1m");
    return c.json({
      seq: await propose(c, "admin", {
        type: "set_writer_limit",
        writer,
        rowsPerMinute: perMinute,
      }),
    });
  });

  app.delete("/limits/writers/:writer", async (c) => {
    admin(c);
    const writer = writerName(c.req.param("writer"));
    return c.json({ seq: await propose(c, "admin", { type: "delete_writer_limit", writer }) });
  });

  // --- cluster membership (admin) ------------------------------------------------------------

  const membership = () => {
    if (!deps.membership) {
      throw new CtlError("not_found", "This executive does not manage cluster membership");
    }
    return deps.membership;
  };
  const memberId = (raw: unknown): string => {
    if (typeof raw !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(raw)) {
      throw new CtlError(
        "bad_request",
        `Invalid member id ${JSON.stringify(raw)}: 1 to 64 of A-Z a-z 0-9 _ . -`,
      );
    }
    return raw;
  };

  app.post("/v1/cluster/members", async (c) => {
    admin(c);
    const body = parseJsonObject(c.get("body"), "member");
    rejectUnknownKeys(body, ["id", "url", "voter"], "Invalid member");
    const id = memberId(body.id);
    const url = body.url;
    if (typeof url !== "string" || !/^https?:\/\/[^/\s]+\/?$/.test(url)) {
      throw new CtlError(
        "bad_request",
        `Invalid member url ${JSON.stringify(url)}: expected http(s)://host:port`,
      );
    }
    if (body.voter !== undefined && typeof body.voter !== "boolean") {
      throw new CtlError("bad_request", `Invalid member: "voter" must be a boolean`);
    }
    const voter = body.voter !== false;
    const m = membership();
    await m.addLearner(id, url);
    if (voter) await m.promote(id);
    return c.json({ id, url, voter });
  });

  app.post("/v1/cluster/members/:id/promote", async (c) => {
    admin(c);
    const id = memberId(c.req.param("id"));
    await membership().promote(id);
    return c.json({ id, voter: true });
  });

  app.delete("/v1/cluster/members/:id", async (c) => {
    admin(c);
    const id = memberId(c.req.param("id"));
    await membership().remove(id);
    return c.json({ id, removed: true });
  });

  app.post("/v1/cluster/leader", async (c) => {
    admin(c);
    const body = parseJsonObject(c.get("body"), "leader transfer");
    rejectUnknownKeys(body, ["id"], "Invalid leader transfer");
    const id = memberId(body.id);
    await membership().transferLeader(id);
    return c.json({ leader: id });
  });

  // --- health and ledger ----------------------------------------------------------------------

  app.get("/status", async (c) => {
    const status = await deps.status();
    return c.json(status, status.healthy ? 200 : 503);
  });

  registerLedgerRoutes(app, deps, { heartbeatMs: options.streamHeartbeatMs ?? 1000 });

  return app;
}

function optionalBase64(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") {
    throw new CtlError("bad_request", `Invalid ${what}: expected a base64 string`);
  }
  const bytes = cookieBytes(decodeBase64(value, what));
  return btoa(String.fromCharCode(...bytes));
}
