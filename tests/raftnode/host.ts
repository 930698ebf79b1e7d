/**
 * A test host for the Raft node: a replicated key-value store over HTTP, one process per member.
 *
 *   deno run -A tests/raftnode/host.ts --id a --data DIR --port 7001 \
 *     --peers a=http://127.0.0.1:7001,b=...,c=... [--join] [--secret S] [--tick-ms 50]
 *     [--snapshot-entries N] [--compact-keep N] [--storage segment|sqlite]
 *
 * Routes: POST /propose {"key","value"} → {"index","key"}; GET /read?key=K[&local=1];
 * GET /dump (every key, local); GET /status; POST /members/{add-learner|promote|remove|transfer}
 * {"id"[,"url"]}; peer traffic under /raft/.
 *
 * The state machine keeps its data and applied index in one SQLite transaction per batch.
 * synchronous=NORMAL is enough: a commit lost to power failure rolls back atomically, and the
 * node re-applies it from the Raft log (the log, not this database, is the durable record).
 */

import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { NotLeaderError, RaftNodeError } from "../../src/raftnode/errors.ts";
import { RaftNode } from "../../src/raftnode/raft_node.ts";
import type { StateMachine, StateMachineEntry } from "../../src/raftnode/state_machine.ts";
import { setupLogging } from "../../src/util/log.ts";
import { copyDatabase, sqlString } from "../../src/util/sqlite_worker.ts";

const { values: args } = parseArgs({
  options: {
    id: { type: "string" },
    data: { type: "string" },
    port: { type: "string" },
    peers: { type: "string" },
    join: { type: "boolean", default: false },
    secret: { type: "string", default: "test-secret" },
    "tick-ms": { type: "string", default: "50" },
    "snapshot-entries": { type: "string", default: "10000" },
    "compact-keep": { type: "string", default: "5000" },
    storage: { type: "string", default: "segment" },
    "log-level": { type: "string", default: "info" },
  },
});

await setupLogging(args["log-level"] as "info", "text");

/** A key-value state machine in SQLite; the applied index is stored in the same transaction. */
class KvStateMachine implements StateMachine {
  private readonly db: DatabaseSync;
  private applied: number;

  constructor(private readonly path: string) {
    this.db = new DatabaseSync(path);
    this.db.exec("PRAGMA journal_mode=WAL");
    this.db.exec("PRAGMA synchronous=NORMAL");
    this.db.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
    this.db.exec("CREATE TABLE IF NOT EXISTS applied (id INTEGER PRIMARY KEY, idx INTEGER)");
    const row = this.db.prepare("SELECT idx FROM applied WHERE id = 1").get();
    this.applied = row ? Number(row.idx) : 0;
  }

  apply(entries: readonly StateMachineEntry[]): unknown[] {
    const put = this.db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
    const results: unknown[] = [];
    this.db.exec("BEGIN");
    try {
      for (const e of entries) {
        if (e.kind !== "app") {
          results.push(null);
          continue;
        }
        const op = JSON.parse(new TextDecoder().decode(e.data));
        put.run(String(op.key), String(op.value));
        results.push({ index: e.index, key: op.key });
      }
      const last = entries[entries.length - 1].index;
      this.db.prepare("INSERT OR REPLACE INTO applied (id, idx) VALUES (1, ?)").run(last);
      this.db.exec("COMMIT");
      this.applied = last;
    } catch (err) {
      this.db.exec("ROLLBACK");
      throw err;
    }
    return results;
  }

  /** The database as a SQLite file image (VACUUM INTO): the state at the applied index. */
  snapshot(): Uint8Array {
    const dir = Deno.makeTempDirSync({ prefix: "ctl-kv-snapshot-" });
    try {
      this.db.exec(`VACUUM INTO ${sqlString(`${dir}/snapshot.db`)}`);
      return Deno.readFileSync(`${dir}/snapshot.db`);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }

  /** The same image, copied on a worker thread while applying goes on; its index is its own. */
  async snapshotConcurrently(): Promise<{ index: number; data: Uint8Array }> {
    const { data, inspected: index } = await copyDatabase(
      this.path,
      (copy) => Number(copy.prepare("SELECT idx FROM applied WHERE id = 1").get()?.idx ?? 0),
    );
    return { index, data };
  }

  restore(data: Uint8Array, index: number): void {
    const file = `${this.path}.restore`;
    Deno.writeFileSync(file, data);
    try {
      this.db.prepare("ATTACH DATABASE ? AS snap").run(file);
      try {
        this.db.exec("BEGIN");
        this.db.exec("DELETE FROM kv");
        this.db.exec("INSERT INTO kv (k, v) SELECT k, v FROM snap.kv");
        this.db.prepare("INSERT OR REPLACE INTO applied (id, idx) VALUES (1, ?)").run(index);
        this.db.exec("COMMIT");
      } catch (err) {
        if (this.db.isTransaction) this.db.exec("ROLLBACK");
        throw err;
      } finally {
        this.db.exec("DETACH DATABASE snap");
      }
    } finally {
      Deno.removeSync(file);
    }
    this.applied = index;
  }

  appliedIndex(): number {
    return this.applied;
  }

  get(key: string): string | null {
    const row = this.db.prepare("SELECT v FROM kv WHERE k = ?").get(key);
    return row ? String(row.v) : null;
  }

  dump(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const r of this.db.prepare("SELECT k, v FROM kv").all()) out[String(r.k)] = String(r.v);
    return out;
  }
}

const dataDir = args.data!;
await Deno.mkdir(dataDir, { recursive: true });
const sm = new KvStateMachine(`${dataDir}/kv.db`);
const peers = args.peers
  ? Object.fromEntries(args.peers.split(",").map((p) => p.split("=", 2) as [string, string]))
  : undefined;
const node = await RaftNode.start({
  id: args.id,
  dataDir,
  stateMachine: sm,
  secret: args.secret!,
  peers,
  join: args.join,
  storage: args.storage as "segment" | "sqlite",
  tickMs: Number(args["tick-ms"]),
  snapshotEntries: Number(args["snapshot-entries"]),
  compactKeepEntries: Number(args["compact-keep"]),
  onFatal: () => Deno.exit(70),
});

/**
 * Runs proposers inside this process (for the benchmark): measures the node without the
 * client's HTTP round trip. Body: {"concurrency", "durationMs", "sequential"}.
 */
async function load(req: Request): Promise<Record<string, number>> {
  const body = await req.json();
  const concurrency = Math.min(Number(body.concurrency ?? 1), 1024);
  const durationMs = Math.min(Number(body.durationMs ?? 1000), 60_000);
  const value = "x".repeat(100 - '{"key":"l-00-000000","value":""}'.length);
  const latenciesMs: number[] = [];
  let n = 0;
  let failed = 0;
  const stopAt = performance.now() + durationMs;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
    while (performance.now() < stopAt) {
      const data = new TextEncoder().encode(JSON.stringify({ key: `l-${w}-${n++}`, value }));
      const t0 = performance.now();
      try {
        await node.propose(data);
      } catch {
        failed++; // leadership moved: the benchmark reports it
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      if (latenciesMs.length < 1_000_000) latenciesMs.push(performance.now() - t0);
    }
  }));
  const elapsedS = (performance.now() - started) / 1000;
  latenciesMs.sort((a, b) => a - b);
  const at = (p: number) =>
    latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(latenciesMs.length * p))];
  const acknowledged = latenciesMs.length;
  return {
    proposals: acknowledged,
    failed,
    perSecond: Math.round(acknowledged / elapsedS),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
  };
}

function errorResponse(err: unknown): Response {
  if (err instanceof NotLeaderError) {
    const leaderUrl = err.leaderId ? node.peerUrls()[err.leaderId] ?? null : null;
    return Response.json(
      { error: { code: err.code, message: err.message, leader: err.leaderId, leaderUrl } },
      { status: 421 },
    );
  }
  if (err instanceof RaftNodeError) {
    return Response.json({ error: { code: err.code, message: err.message } }, { status: 503 });
  }
  return Response.json({ error: { code: "INTERNAL", message: String(err) } }, { status: 500 });
}

async function handle(req: Request): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname.startsWith("/raft/")) return node.handler(req);
  try {
    if (req.method === "POST" && url.pathname === "/propose") {
      const body = await req.text();
      return Response.json(await node.propose(new TextEncoder().encode(body)));
    }
    if (req.method === "GET" && url.pathname === "/read") {
      if (url.searchParams.get("local") !== "1") await node.readIndex();
      return Response.json({ value: sm.get(url.searchParams.get("key") ?? "") });
    }
    if (req.method === "GET" && url.pathname === "/dump") {
      return Response.json({ appliedIndex: sm.appliedIndex(), kv: sm.dump() });
    }
    if (req.method === "GET" && url.pathname === "/status") return Response.json(node.status());
    if (req.method === "POST" && url.pathname === "/load") return Response.json(await load(req));
    if (req.method === "POST" && url.pathname.startsWith("/members/")) {
      const body = await req.json();
      const op = url.pathname.slice("/members/".length);
      if (op === "add-learner") await node.addLearner(body.id, body.url);
      else if (op === "promote") await node.promote(body.id);
      else if (op === "remove") await node.remove(body.id);
      else if (op === "transfer") await node.transferLeader(body.id);
      else return Response.json({ error: { code: "NOT_FOUND" } }, { status: 404 });
      return Response.json({ ok: true, status: node.status() });
    }
    return Response.json({ error: { code: "NOT_FOUND", message: url.pathname } }, { status: 404 });
  } catch (err) {
    return errorResponse(err);
  }
}

Deno.serve({ port: Number(args.port), hostname: "127.0.0.1", onListen: () => {} }, handle);
const stop = async () => {
  await node.stop();
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
