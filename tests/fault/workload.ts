/**
 * The clients of a fault schedule and the history they record.
 *
 * The data model is a set of registers, one per key. Key `keyN` is writer `keyN`: its value is the
 * writer's cookie, and every mutation that changes it also writes row `keyN` of table `fault.regs`
 * in the same atomic batch, so the row mirrors the register:
 *
 * | operation | request                                                                  | register |
 * | --------- | ------------------------------------------------------------------------ | -------- |
 * | `read`    | `GET /cookie` (ReadIndex) as writer `keyN`                                 | read     |
 * | `write`   | mutation upserting `{k: keyN, v: V}` with `cookie: V`                       | write V  |
 * | `delete`  | mutation deleting row `keyN` with `cookie: "del:" + id`                     | write    |
 * | `cas`     | mutation upserting `{k: keyN, v: V}` with `cookie: V`, `check_cookie: FROM` | cas      |
 *
 * Every value is unique in the run, so the ledger tells which operation wrote what. Writes carry
 * an `Idempotency-Key` and are retried (same key, any member) on connection errors, timeouts and
 * 503 until they get a definite answer or their deadline passes (then the outcome is unknown).
 */
import { ADMIN, call, type Reply, sleep } from "../system/harness.ts";
import { HistoryRecorder } from "../../src/check/mod.ts";

export const FAMILY = "fault";
export const TABLE = "regs";
/** One row per mutation, keyed by its unique value: how the ledger names each operation. */
export const OPS_TABLE = "oplog";

export function writerHeaders(key: string): Record<string, string> {
  return { "ctlstore-writer": key, "ctlstore-secret": `secret-${key}` };
}

function b64(text: string): string {
  return btoa(text);
}

/** Creates the family, table and one writer per key (with a high rate limit) on `url`. */
export async function setUpSchema(url: string, keys: string[]): Promise<void> {
  const steps: [string, string, { json?: unknown; body?: string }][] = [
    ["POST", `/families/${FAMILY}`, {}],
    ["POST", `/families/${FAMILY}/tables/${TABLE}`, {
      json: { fields: [["k", "string"], ["v", "string"]], keyFields: ["k"] },
    }],
    ["POST", `/families/${FAMILY}/tables/${OPS_TABLE}`, {
      json: { fields: [["id", "string"], ["k", "string"]], keyFields: ["id"] },
    }],
  ];
  for (const key of keys) {
    steps.push(["POST", `/writers/${key}`, { body: `secret-${key}` }]);
    steps.push(["POST", `/limits/writers/${key}`, { json: { amount: 1_000_000, period: "1m" } }]);
  }
  for (const [method, path, init] of steps) {
    let res: Reply = { status: 0, json: undefined };
    for (let attempt = 0; attempt < 50; attempt++) {
      res = await call(url, method, path, {
        ...init,
        headers: { ...ADMIN, "idempotency-key": `setup:${method}:${path}` },
      });
      if (res.status === 200 || res.status === 409) break;
      await sleep(200);
    }
    if (res.status !== 200 && res.status !== 409) {
      throw new Error(`Set-up ${method} ${path} failed: ${res.status} ${JSON.stringify(res.json)}`);
    }
  }
}

/** What one client operation ended as, beyond the history (for the report and the checks). */
export interface OpRecord {
  process: number;
  f: "read" | "write" | "delete" | "cas";
  key: string;
  /** The Idempotency-Key of a mutation. */
  idempotencyKey?: string;
  /** The value written (unique), or the cas target. */
  value?: string;
  from?: string | null;
  outcome: "ok" | "fail" | "info";
  /** The ledger seq the executive acknowledged. */
  seq?: number;
  /** Requests sent for this operation (retries included). */
  attempts: number;
  /** HTTP statuses seen (0 = connection error or timeout). */
  statuses: number[];
  start: number;
  end: number;
  /** The reply when a status no client should see (500, an unexpected 4xx). */
  unexpected?: string;
}

export interface WorkloadOptions {
  urls: string[];
  keys: string[];
  clients: number;
  rand: () => number;
  /** Per request timeout. */
  requestTimeoutMs: number;
  /** How long a write is retried before its outcome counts as unknown. */
  opDeadlineMs: number;
  /** Pause between a client's operations. */
  thinkMs: number;
}

/** Concurrent clients recording a history until `stop()`. */
export class Workload {
  readonly recorder = new HistoryRecorder();
  readonly ops: OpRecord[] = [];
  readonly t0 = performance.now();
  #running = true;
  #loops: Promise<void>[] = [];
  #nextProcess = 0;
  #lastSeen = new Map<string, string | null>();
  #counter = 0;

  constructor(readonly o: WorkloadOptions) {}

  start(): void {
    for (let c = 0; c < this.o.clients; c++) this.#loops.push(this.#loop());
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  /** Milliseconds since the workload was created. */
  now(): number {
    return performance.now() - this.t0;
  }

  #pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.o.rand() * xs.length)];
  }

  async #loop(): Promise<void> {
    let process = this.#nextProcess++;
    while (this.#running) {
      const key = this.#pick(this.o.keys);
      const r = this.o.rand();
      const rec = r < 0.4
        ? await this.read(process, key)
        : r < 0.7
        ? await this.mutate(process, "cas", key)
        : r < 0.9
        ? await this.mutate(process, "write", key)
        : await this.mutate(process, "delete", key);
      // A process whose operation has an unknown outcome may still have it in flight: the next
      // operation comes from a new process, as in Jepsen.
      if (rec.outcome === "info") process = this.#nextProcess++;
      if (this.o.thinkMs > 0) await sleep(Math.floor(this.o.rand() * this.o.thinkMs));
    }
  }

  /** A linearizable read of `key`'s cookie from a random member (one attempt). */
  async read(process: number, key: string, url?: string): Promise<OpRecord> {
    const start = this.now();
    const op = this.recorder.invoke(process, "read", undefined, key);
    const target = url ?? this.#pick(this.o.urls);
    const res = await rawCall(target, "GET", "/cookie", {
      headers: writerHeaders(key),
      timeoutMs: this.o.requestTimeoutMs,
    });
    const rec: OpRecord = {
      process,
      f: "read",
      key,
      outcome: "info",
      attempts: 1,
      statuses: [res.status],
      start,
      end: 0,
    };
    if (res.status === 200) {
      const value = res.text === "" ? null : res.text;
      op.ok(value);
      rec.outcome = "ok";
      rec.value = value ?? undefined;
      this.#lastSeen.set(key, value);
    } else if (res.status === 0) {
      op.info();
    } else {
      // A read that failed changed nothing: it constrains nothing either way.
      op.fail();
      rec.outcome = "fail";
      if (res.status !== 503 && res.status !== 504) rec.unexpected = `${res.status} ${res.text}`;
    }
    rec.end = this.now();
    this.ops.push(rec);
    return rec;
  }

  /** Sends mutation `rec` (again) to `url`, with its Idempotency-Key. */
  send(rec: OpRecord, url: string): Promise<{ status: number; text: string }> {
    return rawCall(url, "POST", `/families/${FAMILY}/mutations`, {
      headers: {
        ...writerHeaders(rec.key),
        "idempotency-key": rec.idempotencyKey!,
        "content-type": "application/json",
      },
      body: mutationBody(rec),
      timeoutMs: this.o.requestTimeoutMs,
    });
  }

  /** A write, delete or cas of `key`, retried with one Idempotency-Key until definite. */
  async mutate(process: number, f: "write" | "delete" | "cas", key: string): Promise<OpRecord> {
    const id = `p${process}-${++this.#counter}`;
    const value = f === "delete" ? `del:${id}` : id;
    const from = f === "cas" ? (this.#lastSeen.get(key) ?? null) : undefined;
    const start = this.now();
    const op = this.recorder.invoke(
      process,
      f === "delete" ? "write" : f,
      f === "cas" ? [from, value] : value,
      key,
    );
    const rec: OpRecord = {
      process,
      f,
      key,
      idempotencyKey: id,
      value,
      ...(f === "cas" ? { from } : {}),
      outcome: "info",
      attempts: 0,
      statuses: [],
      start,
      end: 0,
    };
    const deadline = performance.now() + this.o.opDeadlineMs;
    for (;;) {
      rec.attempts++;
      const res = await this.send(rec, this.#pick(this.o.urls));
      rec.statuses.push(res.status);
      if (res.status === 200) {
        rec.outcome = "ok";
        rec.seq = JSON.parse(res.text).seq;
        op.ok();
        this.#lastSeen.set(key, value);
        break;
      }
      if (res.status === 409 && f === "cas" && res.text.includes("cookie_conflict")) {
        rec.outcome = "fail";
        op.fail();
        break;
      }
      const retriable = res.status === 0 || res.status === 503 || res.status === 504 ||
        res.status === 502;
      if (!retriable) rec.unexpected = `${res.status} ${res.text}`;
      if (!retriable || performance.now() + 100 > deadline) {
        op.info();
        break;
      }
      await sleep(50 + Math.floor(this.o.rand() * 100));
    }
    rec.end = this.now();
    this.ops.push(rec);
    return rec;
  }
}

/** The request body of mutation `rec`: the same bytes on every retry. */
export function mutationBody(rec: OpRecord): string {
  const { f, key, value } = rec;
  return JSON.stringify({
    cookie: b64(value!),
    ...(f === "cas" ? { check_cookie: b64(rec.from ?? "") } : {}),
    mutations: [
      f === "delete"
        ? { table: TABLE, delete: true, values: { k: key } }
        : { table: TABLE, delete: false, values: { k: key, v: value } },
      // Names the operation in the ledger, whatever it did to the register's row.
      { table: OPS_TABLE, delete: false, values: { id: value, k: key } },
    ],
  });
}

/** One HTTP call returning the raw text; a connection failure or timeout is status 0. */
export async function rawCall(
  url: string,
  method: string,
  path: string,
  init: { body?: string; headers?: Record<string, string>; timeoutMs: number },
): Promise<{ status: number; text: string }> {
  try {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: init.headers,
      body: init.body,
      signal: AbortSignal.timeout(init.timeoutMs),
    });
    return { status: res.status, text: await res.text() };
  } catch {
    return { status: 0, text: "" };
  }
}
