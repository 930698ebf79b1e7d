/**
 * Drives the executive app in-process (no sockets) against a local SoR, with ctlstore's request
 * shapes, and captures the whole observable state so tests can assert that a rejected request
 * changed nothing.
 */
import assert from "node:assert/strict";
import { createExecutiveApp } from "../../src/executive/app.ts";
import type { ExecutiveDeps } from "../../src/executive/deps.ts";
import { LOCAL_ADMIN_TOKEN, LocalExecutive } from "../../src/executive/local.ts";

export const ADMIN = { authorization: `Bearer ${LOCAL_ADMIN_TOKEN}` };
export const WRITER = { "ctlstore-writer": "writer1", "ctlstore-secret": "secret1" };

/** A response, decoded. */
export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // deno-lint-ignore no-explicit-any
  json: any;
}

/** An app over a local executive. */
export class Harness {
  readonly deps: LocalExecutive;
  readonly app: ReturnType<typeof createExecutiveApp>;
  clock = 1_700_000_000_000;

  constructor(options: { destructiveChanges?: boolean; deps?: ExecutiveDeps } = {}) {
    this.deps = new LocalExecutive({
      destructiveChanges: options.destructiveChanges ?? true,
      now: () => this.clock,
    });
    this.app = createExecutiveApp(options.deps ?? this.deps, { streamHeartbeatMs: 50 });
  }

  async call(
    method: string,
    path: string,
    init: { body?: BodyInit; json?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
    const res = await this.app.request(path, { method, body, headers: init.headers });
    const text = await res.text();
    let json: unknown = undefined;
    if ((res.headers.get("content-type") ?? "").includes("application/json")) {
      json = JSON.parse(text);
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  admin(method: string, path: string, json?: unknown): Promise<Reply> {
    return this.call(method, path, { json, headers: ADMIN });
  }

  mutate(family: string, json: unknown, headers: Record<string, string> = WRITER): Promise<Reply> {
    return this.call("POST", `/families/${family}/mutations`, { json, headers });
  }

  /** Family `fam`, table `users` (id string key, n integer, note text), writer1/secret1. */
  async standard(): Promise<void> {
    await this.ok(this.admin("POST", "/families/fam"));
    await this.ok(this.admin("POST", "/families/fam/tables/users", {
      fields: [["id", "string"], ["n", "integer"], ["note", "text"]],
      keyFields: ["id"],
    }));
    await this.ok(this.call("POST", "/writers/writer1", { body: "secret1", headers: ADMIN }));
  }

  async ok(pending: Promise<Reply>): Promise<Reply> {
    const reply = await pending;
    assert.equal(reply.status, 200, `expected 200, got ${reply.status}: ${reply.text}`);
    return reply;
  }

  /** Everything a client could observe, for before/after comparisons. */
  state(): unknown {
    const sor = this.deps.sor;
    return {
      ledger: sor.ledger(0, 1000),
      checksums: sor.checksums(),
      families: sor.families().map((f) => [f, sor.familySchemas(f)]),
      writers: sor.writers().map((w) => [w, sor.cookie(w)]),
      tableLimits: sor.tableLimits(),
      writerLimits: sor.writerLimits(),
    };
  }

  close(): void {
    this.deps.close();
  }
}

/** Asserts a JSON error reply with the given status and code. */
export function assertError(reply: Reply, status: number, code: string): void {
  assert.equal(
    reply.status,
    status,
    `expected ${status} ${code}, got ${reply.status}: ${reply.text}`,
  );
  assert.equal(reply.json?.error?.code, code, reply.text);
  assert.equal(typeof reply.json.error.message, "string");
  assert.ok(reply.json.error.message.length > 0);
}

/** Runs `fn` with a fresh harness and closes it afterwards. */
export async function withHarness(
  fn: (h: Harness) => Promise<void>,
  options: { destructiveChanges?: boolean; standard?: boolean } = {},
): Promise<void> {
  const h = new Harness(options);
  try {
    if (options.standard !== false) await h.standard();
    await fn(h);
  } finally {
    h.close();
  }
}
