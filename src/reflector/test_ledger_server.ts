/**
 * An in-process executive that serves only the ledger routes, over a list of entries, with the
 * executive's contract: `GET /v1/ledger?after&limit[&wait_ms]` (long poll) and
 * `GET /v1/ledger/stream?after` (NDJSON entries, `{"heartbeat":lastSeq}` lines when idle).
 * For tests of the reflector and of apps; the real executive lives in src/executive.
 */
import { DatabaseSync } from "node:sqlite";
import { LedgerSqlApplier } from "../ledger/sql.ts";
import type { LedgerEntry } from "../ledger/types.ts";

export interface TestLedgerServerOptions {
  /** Heartbeat period on an idle stream. */
  heartbeatMs?: number;
  /** Answer 404 on the stream route, so clients must long-poll. */
  noStream?: boolean;
  /** Send at most this many entries per `paceMs` on a stream (to make a stream take time). */
  paceEntries?: number;
  paceMs?: number;
  /** Answer 410 to reads after a seq below this (ledger retention). */
  retainedAfter?: number;
}

/** One request the server saw. */
export interface SeenRequest {
  route: "stream" | "poll";
  after: number;
}

/** A ledger server on 127.0.0.1 with a random port. */
export class TestLedgerServer {
  readonly entries: LedgerEntry[] = [];
  readonly requests: SeenRequest[] = [];
  readonly url: string;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #options: TestLedgerServerOptions;
  readonly #waiters = new Set<() => void>();
  readonly #streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  readonly #abort = new AbortController();

  constructor(options: TestLedgerServerOptions = {}) {
    this.#options = options;
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {}, signal: this.#abort.signal },
      (req) => this.#handle(req),
    );
    this.url = `http://127.0.0.1:${this.#server.addr.port}`;
  }

  /** The last seq (0 when empty). */
  get lastSeq(): number {
    return this.entries.length === 0 ? 0 : this.entries[this.entries.length - 1].seq;
  }

  /** Appends entries (their seqs must continue the ledger) and wakes waiting readers. */
  append(...entries: LedgerEntry[]): void {
    for (const e of entries) {
      if (e.seq !== this.lastSeq + 1) throw new Error(`entry ${e.seq} after ${this.lastSeq}`);
      this.entries.push(e);
    }
    for (const wake of [...this.#waiters]) wake();
  }

  /** Ends every open stream mid-way, as an executive restarting would. */
  breakStreams(): void {
    for (const c of this.#streams) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    this.#streams.clear();
  }

  /** Stops the server, breaking open streams. */
  async close(): Promise<void> {
    this.breakStreams();
    for (const wake of [...this.#waiters]) wake();
    this.#abort.abort();
    await this.#server.finished.catch(() => {});
  }

  #after(index: number, limit: number): LedgerEntry[] {
    // Entries are contiguous from seq 1, so the entry after seq N sits at index N.
    return this.entries.slice(index, index + limit);
  }

  #waitForAppend(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#waiters.add(done);
    });
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const after = Number(url.searchParams.get("after") ?? "0");
    const gone = this.#options.retainedAfter;
    if (url.pathname === "/v1/ledger/stream") {
      this.requests.push({ route: "stream", after });
      if (this.#options.noStream) return new Response("not found", { status: 404 });
      if (gone !== undefined && after < gone) return goneResponse();
      return new Response(this.#stream(after), {
        headers: { "content-type": "application/x-ndjson" },
      });
    }
    if (url.pathname === "/v1/ledger") {
      this.requests.push({ route: "poll", after });
      if (gone !== undefined && after < gone) return goneResponse();
      const limit = Number(url.searchParams.get("limit") ?? "100");
      const waitMs = Number(url.searchParams.get("wait_ms") ?? "0");
      if (this.lastSeq <= after && waitMs > 0) await this.#waitForAppend(waitMs);
      return Response.json({ entries: this.#after(after, limit), lastSeq: this.lastSeq });
    }
    return new Response("not found", { status: 404 });
  }

  #stream(after: number): ReadableStream<Uint8Array> {
    const encoder = new TextEncoder();
    const heartbeatMs = this.#options.heartbeatMs ?? 200;
    const paceEntries = this.#options.paceEntries ?? 1_000;
    const paceMs = this.#options.paceMs ?? 0;
    let sent = after;
    let closed = false;
    let ctrl: ReadableStreamDefaultController<Uint8Array>;
    const pump = async () => {
      while (!closed && !this.#abort.signal.aborted) {
        const batch = this.#after(sent, paceEntries);
        try {
          if (batch.length > 0) {
            ctrl.enqueue(encoder.encode(batch.map((e) => JSON.stringify(e) + "\n").join("")));
            sent = batch[batch.length - 1].seq;
            if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs));
            continue;
          }
          ctrl.enqueue(encoder.encode(JSON.stringify({ heartbeat: this.lastSeq }) + "\n"));
        } catch {
          return; // the client went away or the test broke the stream
        }
        await this.#waitForAppend(heartbeatMs);
      }
    };
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        ctrl = controller;
        this.#streams.add(controller);
        pump();
      },
      cancel: () => {
        closed = true;
        this.#streams.delete(ctrl);
      },
    });
  }
}

function goneResponse(): Response {
  return Response.json(
    { error: { code: "ledger_gone", message: "seq is older than the ledger retention" } },
    { status: 410 },
  );
}

/**
 * A ledger of `count` entries for tests: entry 1 creates `fam___items (id integer key, v
 * integer, tag string)` and `other___items`; later entries upsert, delete and clear rows, some in
 * family `other`, so that the final state depends on applying every entry exactly once in order
 * (`v` counts how often a row was written).
 */
export function syntheticLedger(count: number, startTsMs = 1_700_000_000_000): LedgerEntry[] {
  const entries: LedgerEntry[] = [{
    seq: 1,
    ts: startTsMs,
    family: null,
    ops: ["fam", "other"].map((family) => ({
      op: "create_table" as const,
      family,
      table: "items",
      fields: [["id", "integer"], ["v", "integer"], ["tag", "string"]],
      keyFields: ["id"],
    })),
  }];
  // v is the number of upserts of that id so far: a re-applied or skipped entry changes it.
  const writes = new Map<number, number>();
  for (let seq = 2; seq <= count; seq++) {
    const family = seq % 7 === 0 ? "other" : "fam";
    const id = (seq * 31) % 97;
    let ops: LedgerEntry["ops"];
    if (seq % 53 === 0) {
      writes.clear();
      ops = [{ op: "clear_table", family: "fam", table: "items" }];
    } else if (seq % 11 === 0) {
      writes.delete(id);
      ops = [{ op: "delete", family: "fam", table: "items", key: { id } }];
    } else if (family === "other") {
      ops = [{ op: "upsert", family, table: "items", values: { id, v: seq, tag: `o${seq}` } }];
    } else {
      const v = (writes.get(id) ?? 0) + 1;
      writes.set(id, v);
      ops = [
        { op: "upsert", family, table: "items", values: { id, v, tag: `s${seq}` } },
        { op: "upsert", family, table: "items", values: { id: 1000 + id, v: seq, tag: "x" } },
      ];
    }
    entries.push({ seq, ts: startTsMs + seq, family, ops });
  }
  return entries;
}

/** The tables `syntheticLedger` writes. */
export const SYNTHETIC_TABLES = ["fam___items", "other___items"] as const;

/** Every row of the given tables, as text, in key order (for comparing whole LDBs). */
export function dumpTables(db: DatabaseSync, tables: readonly string[] = SYNTHETIC_TABLES): string {
  const out: string[] = [];
  for (const table of tables) {
    const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE name = ?").get(table);
    if (!exists) {
      out.push(`${table}: missing`);
      continue;
    }
    for (const row of db.prepare(`SELECT * FROM ${table} ORDER BY 1`).all()) {
      out.push(`${table}: ${JSON.stringify(row)}`);
    }
  }
  return out.join("\n");
}

/** The dump an LDB holds after applying `entries` (optionally only some families' ops). */
export function expectedDump(
  entries: readonly LedgerEntry[],
  families?: readonly string[],
): string {
  const db = new DatabaseSync(":memory:");
  const applier = new LedgerSqlApplier(db);
  for (const entry of entries) {
    applier.apply(entry.ops.filter((op) => !families || families.includes(op.family)));
  }
  const dump = dumpTables(db);
  db.close();
  return dump;
}

/** The dump of an LDB file. */
export function ldbDump(path: string): string {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return dumpTables(db);
  } finally {
    db.close();
  }
}
