/**
 * Real `ctl` processes on loopback for whole-system tests: a cluster of executives, reflectors,
 * and a client that speaks ctlstore's HTTP API. Each process is `deno run -A main.ts …`.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type TableChecksum, tableChecksums } from "../../src/sor/checksum.ts";
import { pipeOutputToFile } from "../../src/util/child_output.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
export const ADMIN_TOKEN = "system-test-admin";
export const CLUSTER_SECRET = "system-test-secret";
export const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Free loopback ports (bound to 0, read, released). */
export function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  listeners.forEach((l) => l.close());
  return ports;
}

/** Polls `check` until it returns a value other than undefined/false, or fails naming `what`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
  pollMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      lastError = e;
    }
    await sleep(pollMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}` +
      (lastError ? ` (last error: ${lastError})` : ""),
  );
}

/** A seeded PRNG (mulberry32), so a failing run can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A child process (a `ctl`, or anything run inside a network namespace) logging to a file. */
export class LoggedProcess {
  proc: Deno.ChildProcess | null = null;
  /** Stopped by SIGSTOP and not continued since. */
  paused = false;

  /** `command`: the program and its arguments; `env` adds to this process's environment. */
  constructor(
    readonly name: string,
    readonly command: string[],
    readonly logFile: string,
    readonly env: Record<string, string> = {},
  ) {}

  start(): void {
    if (this.proc) throw new Error(`${this.name} is already running`);
    const out = Deno.openSync(this.logFile, { create: true, append: true });
    const proc = new Deno.Command(this.command[0], {
      args: this.command.slice(1),
      env: this.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.proc = proc;
    this.paused = false;
    pipeOutputToFile(proc, out);
    // A process that ends on its own (a crash, a full disk) is no longer running.
    proc.status.then(() => {
      if (this.proc === proc) this.proc = null;
    });
  }

  /** Sends a signal without waiting (SIGSTOP, SIGCONT). */
  signal(sig: Deno.Signal): void {
    try {
      this.proc?.kill(sig);
    } catch { /* already gone */ }
    if (sig === "SIGSTOP") this.paused = true;
    if (sig === "SIGCONT") this.paused = false;
  }

  /** Sends `sig` and waits for the process to end. */
  async kill(sig: Deno.Signal = "SIGKILL"): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = null;
    try {
      p.kill(sig);
    } catch { /* already gone */ }
    await p.status;
    this.paused = false;
  }

  get running(): boolean {
    return this.proc !== null;
  }
}

/** This tree's `ctl ARGS` (JSON logs), with `denoFlags` for `deno run` (e.g. `--inspect`). */
export class CtlProcess extends LoggedProcess {
  constructor(name: string, readonly args: string[], logFile: string, denoFlags: string[] = []) {
    super(
      name,
      [Deno.execPath(), "run", "--allow-all", ...denoFlags, MAIN, "--log-format", "json", ...args],
      logFile,
    );
  }
}

/** What an executive's `/status` says. */
export interface ExecutiveStatus {
  id: string;
  role: string;
  leader: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  lastSeq: number;
}

/** A cluster of executives. */
export class Cluster {
  readonly members: { id: string; url: string; dataDir: string; process: CtlProcess }[];

  constructor(readonly dir: string, size: number, extraArgs: string[] = []) {
    const ports = freePorts(size);
    const peers = ports.map((p, i) => `e${i + 1}=http://127.0.0.1:${p}`).join(",");
    this.members = ports.map((port, i) => {
      const id = `e${i + 1}`;
      const dataDir = `${dir}/${id}`;
      return {
        id,
        url: `http://127.0.0.1:${port}`,
        dataDir,
        process: new CtlProcess(id, [
          "executive",
          "--id",
          id,
          "--data",
          dataDir,
          "--peers",
          peers,
          "--listen",
          `127.0.0.1:${port}`,
          "--cluster-secret",
          CLUSTER_SECRET,
          "--admin-token",
          ADMIN_TOKEN,
          "--destructive-changes",
          ...extraArgs,
        ], `${dir}/${id}.log`),
      };
    });
  }

  get urls(): string[] {
    return this.members.map((m) => m.url);
  }

  member(id: string) {
    const m = this.members.find((x) => x.id === id);
    assert.ok(m, `no member ${id}`);
    return m;
  }

  start(): void {
    for (const m of this.members) m.process.start();
  }

  async status(id: string): Promise<ExecutiveStatus | undefined> {
    try {
      const res = await fetch(`${this.member(id).url}/status`, {
        signal: AbortSignal.timeout(1000),
      });
      return await res.json() as ExecutiveStatus;
    } catch {
      return undefined;
    }
  }

  /** The leader that every running member agrees on. */
  leader(timeoutMs = 15_000): Promise<{ id: string; url: string }> {
    return waitFor("a leader all running members agree on", async () => {
      const running = this.members.filter((m) => m.process.running);
      const statuses = await Promise.all(running.map((m) => this.status(m.id)));
      const leaders = new Set(statuses.map((s) => s?.leader ?? null));
      if (leaders.size !== 1) return undefined;
      const leader = [...leaders][0];
      if (!leader || !running.some((m) => m.id === leader)) return undefined;
      return { id: leader, url: this.member(leader).url };
    }, timeoutMs);
  }

  /** Waits until every running member has applied up to ledger seq `seq`. */
  async waitLastSeq(seq: number, timeoutMs = 15_000): Promise<void> {
    for (const m of this.members.filter((x) => x.process.running)) {
      await waitFor(`${m.id} to reach seq ${seq}`, async () => {
        const s = await this.status(m.id);
        return s !== undefined && s.lastSeq >= seq;
      }, timeoutMs);
    }
  }

  /**
   * Per-table checksums of a member's SoR file (read-only, while it runs), once the file holds
   * everything the member has applied (see `sorFileChecksums`); a stopped member's file as it is.
   */
  async sorChecksums(id: string): Promise<TableChecksum[]> {
    const path = `${this.member(id).dataDir}/sor.db`;
    const status = this.member(id).process.running ? await this.status(id) : undefined;
    return status === undefined ? checksumsOf(path) : await sorFileChecksums(path, status.lastSeq);
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.process.kill("SIGKILL")));
  }
}

/** Per-table checksums of any SQLite file with family___table tables (a SoR or an LDB). */
export function checksumsOf(path: string): TableChecksum[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return tableChecksums(db);
  } finally {
    db.close();
  }
}

/** The last ledger seq committed to a SoR file: what another connection reads there. */
export function sorFileSeq(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const row = db.prepare("SELECT COALESCE(MAX(seq), 0) AS seq FROM _ctl_ledger").get();
    return Number(row?.seq ?? 0);
  } finally {
    db.close();
  }
}

/**
 * Checksums of a running member's SoR file once its committed ledger reaches `seq`: a member
 * reads its applied batches at once but commits them to the file a few milliseconds later
 * (`SorStateMachine`'s commitEveryMs), and this reads the file from another connection.
 */
export async function sorFileChecksums(path: string, seq: number): Promise<TableChecksum[]> {
  await waitFor(`${path} to hold seq ${seq}`, () => sorFileSeq(path) >= seq, 5_000);
  return checksumsOf(path);
}

/** The `_ldb_seq` of an LDB, read with the SQL ctlstore's reader uses. */
export function ldbSeq(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const row = db.prepare("SELECT seq FROM _ldb_seq WHERE id = 1").get() as
      | { seq: number }
      | undefined;
    return row?.seq ?? 0;
  } catch {
    return 0;
  } finally {
    db.close();
  }
}

/** A reflector process. */
export function reflector(dir: string, name: string, executives: string[]): CtlProcess {
  return new CtlProcess(name, [
    "reflector",
    "--ldb",
    `${dir}/${name}/ldb.db`,
    "--executive",
    executives.join(","),
    "--backoff-max",
    "500ms",
    "--idle-timeout",
    "3s",
  ], `${dir}/${name}.log`);
}

/** The outcome of one HTTP call. */
export interface Reply {
  status: number;
  // deno-lint-ignore no-explicit-any
  json: any;
}

/** One HTTP call; a connection failure is status 0. */
export async function call(
  url: string,
  method: string,
  path: string,
  init: { json?: unknown; body?: string; headers?: Record<string, string>; timeoutMs?: number } =
    {},
): Promise<Reply> {
  try {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: init.headers,
      body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
      signal: AbortSignal.timeout(init.timeoutMs ?? 5000),
    });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = JSON.parse(text);
    } catch { /* not JSON */ }
    return { status: res.status, json };
  } catch {
    return { status: 0, json: undefined };
  }
}

/** The writer every system test writes as. */
export const WRITER = { "ctlstore-writer": "writer1", "ctlstore-secret": "secret-one" };

/**
 * Family `app`, table `rows` with `fields` (keyed by `id`), writer `writer1` — through `url`.
 * `fastWriter` lifts the writer's rate limit (1,000 rows a minute by default).
 */
export async function createAppTable(
  url: string,
  fields: [string, string][],
  options: { fastWriter?: boolean } = {},
): Promise<void> {
  const steps: [string, string, Parameters<typeof call>[3]][] = [
    ["POST", "/families/app", { headers: ADMIN }],
    ["POST", "/families/app/tables/rows", { headers: ADMIN, json: { fields, keyFields: ["id"] } }],
    ["POST", "/writers/writer1", { headers: ADMIN, body: "secret-one" }],
  ];
  if (options.fastWriter) {
    steps.push(["POST", "/limits/writers/writer1", {
      headers: ADMIN,
      json: { amount: 100_000_000, period: "1m" },
    }]);
  }
  for (const [method, path, init] of steps) {
    const res = await call(url, method, path, init);
    assert.equal(res.status, 200, `${method} ${path}: ${JSON.stringify(res.json)}`);
  }
}
