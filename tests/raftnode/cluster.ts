/**
 * A cluster of host processes (tests/raftnode/host.ts) on loopback, for multi-process tests
 * and the benchmark: start, kill -9, restart, and a client that follows the leader.
 */

import assert from "node:assert/strict";

const HOST = new URL("./host.ts", import.meta.url).pathname;
const DENO = Deno.execPath();

/** Picks a free loopback port (bind to 0, read it, release it). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Options passed to every host of a cluster. */
export interface HostOptions {
  tickMs?: number;
  snapshotEntries?: number;
  compactKeep?: number;
  storage?: "segment" | "sqlite";
  logLevel?: string;
  secret?: string;
}

/** The status a host reports. */
export interface HostStatus {
  id: string;
  role: string;
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
  snapshotIndex: number;
  members: { id: string; url: string | null; voter: boolean; matchIndex: number }[];
}

/** One member process. */
export class Member {
  proc: Deno.ChildProcess | null = null;
  readonly url: string;

  constructor(
    readonly id: string,
    readonly port: number,
    readonly dataDir: string,
    private readonly options: HostOptions,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Starts the process; `peers` is required the first time, `join` for a joining member. */
  async start(peers?: Record<string, string>, join = false): Promise<void> {
    assert.equal(this.proc, null, `${this.id} is already running`);
    await Deno.mkdir(this.dataDir, { recursive: true });
    const o = this.options;
    const v8Flags = Deno.env.get("RAFTNODE_V8_FLAGS");
    const args = [
      "run",
      "-A",
      ...(v8Flags ? [`--v8-flags=${v8Flags}`] : []),
      HOST,
      "--id",
      this.id,
      "--data",
      this.dataDir,
      "--port",
      String(this.port),
      "--tick-ms",
      String(o.tickMs ?? 50),
      "--snapshot-entries",
      String(o.snapshotEntries ?? 10000),
      "--compact-keep",
      String(o.compactKeep ?? 5000),
      "--storage",
      o.storage ?? "segment",
      "--log-level",
      o.logLevel ?? "info",
      "--secret",
      o.secret ?? "test-secret",
    ];
    if (peers) {
      args.push("--peers", Object.entries(peers).map(([id, url]) => `${id}=${url}`).join(","));
    }
    if (join) args.push("--join");
    const log = await Deno.open(`${this.dataDir}.log`, { create: true, append: true });
    this.proc = new Deno.Command(DENO, { args, stdout: "null", stderr: "piped" }).spawn();
    // Copied chunk by chunk (pipeTo into a file held the output back until the child exited).
    (async (stderr: ReadableStream<Uint8Array>) => {
      try {
        for await (const chunk of stderr) await log.write(chunk);
      } catch {
        /* child gone */
      } finally {
        log.close();
      }
    })(this.proc.stderr);
    await this.waitUp();
  }

  private async waitUp(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.status().catch(() => null)) return;
      await sleep(20);
    }
    throw new Error(`${this.id} did not come up within ${timeoutMs} ms (see ${this.dataDir}.log)`);
  }

  /** kill -9: no shutdown, no flush. */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (p === null) return;
    this.proc = null;
    try {
      p.kill("SIGKILL");
    } catch { /* already gone */ }
    await p.status;
  }

  /** Graceful stop (SIGTERM). */
  async stop(): Promise<void> {
    const p = this.proc;
    if (p === null) return;
    this.proc = null;
    try {
      p.kill("SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
    }, 3000);
    await p.status;
    clearTimeout(timer);
  }

  get running(): boolean {
    return this.proc !== null;
  }

  async status(): Promise<HostStatus> {
    const res = await fetch(`${this.url}/status`, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) throw new Error(`status ${res.status}`);
    return await res.json();
  }

  /** The last `lines` lines of this member's log (stderr of every start), or why not. */
  async logTail(lines = 30): Promise<string> {
    try {
      return (await Deno.readTextFile(`${this.dataDir}.log`)).trimEnd().split("\n").slice(-lines)
        .join("\n");
    } catch (err) {
      return `(unreadable: ${err})`;
    }
  }

  async dump(): Promise<{ appliedIndex: number; kv: Record<string, string> }> {
    const res = await fetch(`${this.url}/dump`, { signal: AbortSignal.timeout(5000) });
    return await res.json();
  }

  /** POSTs JSON; returns status and parsed body. */
  async post(
    path: string,
    body: unknown,
    timeoutMs = 15_000,
  ): Promise<
    {
      status: number;
      body:
        & { error?: { code?: string; leader?: string; message?: string } }
        & Record<string, unknown>;
    }
  > {
    const res = await fetch(`${this.url}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, body: await res.json() };
  }
}

/** A set of members under one temporary directory. */
export class Cluster {
  readonly members = new Map<string, Member>();
  private constructor(readonly root: string, readonly options: HostOptions) {}

  /** Creates members `ids` (not started). */
  static async create(ids: string[], options: HostOptions = {}): Promise<Cluster> {
    const root = await Deno.makeTempDir({ prefix: "ctl-raftnode-test-" });
    const c = new Cluster(root, options);
    for (const id of ids) c.add(id);
    return c;
  }

  /** Adds a (not started) member. */
  add(id: string): Member {
    const m = new Member(id, freePort(), `${this.root}/${id}`, this.options);
    this.members.set(id, m);
    return m;
  }

  get(id: string): Member {
    const m = this.members.get(id);
    assert.ok(m, `no member ${id}`);
    return m;
  }

  /** Peer map of the given members (default: all). */
  peers(ids = [...this.members.keys()]): Record<string, string> {
    return Object.fromEntries(ids.map((id) => [id, this.get(id).url]));
  }

  /** Starts every member as a fresh cluster. */
  async startAll(): Promise<void> {
    const peers = this.peers();
    await Promise.all([...this.members.values()].map((m) => m.start(peers)));
  }

  running(): Member[] {
    return [...this.members.values()].filter((m) => m.running);
  }

  /** Waits until a running member is leader and the others that answer agree. */
  async waitLeader(timeoutMs = 5000, among?: Member[]): Promise<Member> {
    const deadline = Date.now() + timeoutMs;
    let last: { group: Member[]; statuses: (HostStatus | null)[] } = { group: [], statuses: [] };
    while (Date.now() < deadline) {
      const group = among ?? this.running();
      const statuses = await Promise.all(group.map((m) => m.status().catch(() => null)));
      const leaders = statuses.filter((s) => s?.role === "leader");
      if (leaders.length === 1) {
        const leaderId = leaders[0]!.id;
        const term = leaders[0]!.term;
        const agree = statuses.every((s) => s === null || s.leader === leaderId || s.term < term);
        if (agree) return this.get(leaderId);
      }
      last = { group, statuses };
      await sleep(20);
    }
    // What each member said last and logged last: a rare failure is otherwise gone with the data.
    const logs = await Promise.all(
      [...this.members.values()].map(async (m) => `--- ${m.id}.log (end)\n${await m.logTail()}`),
    );
    const seen = last.group.map((m, i) => `${m.id}: ${JSON.stringify(last.statuses[i])}`);
    throw new Error(
      `no leader within ${timeoutMs} ms; last statuses:\n${seen.join("\n")}\n${logs.join("\n")}`,
    );
  }

  /**
   * Writes key=value through the leader, following NOT_LEADER hints and retrying until
   * acknowledged or `timeoutMs` passes. Returns true when acknowledged.
   */
  async put(key: string, value: string, timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let target: Member | undefined = this.running()[0];
    while (Date.now() < deadline) {
      if (target === undefined || !target.running) {
        target = this.running()[Math.floor(Math.random() * this.running().length)];
        if (target === undefined) {
          await sleep(20); // nobody is up (yet): wait, never spin
          continue;
        }
      }
      try {
        const r = await target.post("/propose", { key, value }, 3000);
        if (r.status === 200) return true;
        const leaderHint = r.body.error?.leader;
        if (r.status === 421 && leaderHint) {
          target = this.members.get(leaderHint);
          if (target?.running) continue;
        }
      } catch { /* member down or slow: try another */ }
      target = undefined;
      await sleep(20);
    }
    return false;
  }

  /** Stops every member (kill -9: tests do not need graceful shutdown) and removes the data. */
  async destroy(keep = Deno.env.get("RAFTNODE_KEEP") === "1"): Promise<void> {
    await Promise.all([...this.members.values()].map((m) => m.kill9()));
    if (!keep) await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }

  /** Waits until every running member has applied at least `index`. */
  async waitApplied(index: number, timeoutMs = 10_000, members = this.running()): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const s = await Promise.all(members.map((m) => m.status().catch(() => null)));
      if (s.every((x) => x !== null && x.appliedIndex >= index)) return;
      await sleep(25);
    }
    throw new Error(`members did not apply ${index} within ${timeoutMs} ms`);
  }
}
