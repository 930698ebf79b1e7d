/**
 * The two systems under load, behind one interface: ctl (3 `ctl executive` processes from the
 * system-test harness) and etcd (3 `etcd` members from Debian's `etcd-server`), both on loopback
 * with fsync on and data in a temporary directory. A write of N rows is one ctl mutations request
 * with N upserts, or one etcd put (N = 1) / txn of N puts through etcd's JSON gateway.
 */
import { join } from "node:path";
import {
  ADMIN,
  ADMIN_TOKEN,
  call,
  Cluster,
  CLUSTER_SECRET,
  freePorts,
  waitFor,
} from "../../tests/system/harness.ts";
import { pipeOutputToFile } from "../../src/util/child_output.ts";
import type { Poster } from "./http1.ts";

/** Distinct keys the writes cycle through. */
export const KEYS = 10_000;
export const FAMILY = "bench";
export const TABLE = "rows";
export const WRITER = "bench-writer";
export const WRITER_SECRET = "bench-writer-secret";
const WRITER_HEADERS = {
  "ctlstore-writer": WRITER,
  "ctlstore-secret": WRITER_SECRET,
  "content-type": "application/json",
};
/** A 32-byte value, like a small flag or routing entry. */
const VALUE_PAD = "x".repeat(24);

export function keyOf(i: number): string {
  return `k${i % KEYS}`;
}

/** A 3-member cluster that takes writes over HTTP. */
export interface KvSystem {
  readonly name: "ctl" | "etcd";
  /** The log files of the members, for the report when something fails. */
  readonly dir: string;
  leaderUrl(): Promise<string>;
  /** A running member that is not the leader. */
  followerUrl(): Promise<string>;
  /** One write of `rows` rows (keys from `keyBase`); true when acknowledged. */
  write(
    poster: Poster,
    url: string,
    rows: number,
    keyBase: number,
    signal?: AbortSignal,
  ): Promise<boolean>;
  /**
   * kill -9 of the leader; returns its id (the kill has returned when this resolves). `atKill`
   * runs just before the signal is sent, after the leader was looked up.
   */
  killLeader(atKill: () => void): Promise<string>;
  /** Starts a killed member again on its data. */
  restart(id: string): Promise<void>;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// ctl

/** The last refused ctl write (status and body), for the log. */
export const ctlWriteErrors: { last?: string } = {};

/** The ledger seq of a ctl write, or undefined when it failed. */
export async function ctlWriteSeq(
  poster: Poster,
  url: string,
  rows: number,
  keyBase: number,
  signal?: AbortSignal,
): Promise<number | undefined> {
  const mutations = [];
  for (let j = 0; j < rows; j++) {
    mutations.push({
      table: TABLE,
      delete: false,
      values: { k: keyOf(keyBase + j), v: `${keyBase}${VALUE_PAD}`.slice(0, 32) },
    });
  }
  const res = await poster.post(
    `${url}/families/${FAMILY}/mutations`,
    WRITER_HEADERS,
    JSON.stringify({ mutations }),
    signal,
  );
  let body: { seq?: number } | undefined;
  try {
    body = JSON.parse(res.text);
  } catch { /* not JSON: reported below */ }
  if (res.status !== 200) ctlWriteErrors.last = `${res.status} ${res.text.slice(0, 200)}`;
  return res.status === 200 ? body?.seq : undefined;
}

export class CtlSystem implements KvSystem {
  readonly name = "ctl" as const;
  readonly cluster: Cluster;

  private constructor(readonly dir: string, executiveArgs: string[]) {
    this.cluster = new Cluster(dir, 3, executiveArgs);
  }

  /**
   * Starts 3 executives (with `executiveArgs` added to each command line), creates the bench
   * family/table/writer and lifts the rate limit.
   */
  static async start(dir: string, executiveArgs: string[] = []): Promise<CtlSystem> {
    const s = new CtlSystem(join(dir, "ctl"), executiveArgs);
    Deno.mkdirSync(s.dir, { recursive: true });
    s.cluster.start();
    try {
      await s.setUp();
    } catch (e) {
      await s.stop();
      throw e;
    }
    return s;
  }

  private async setUp(): Promise<void> {
    const { url } = await this.cluster.leader(30_000);
    const steps: [string, string, Parameters<typeof call>[3]][] = [
      ["POST", `/families/${FAMILY}`, { headers: ADMIN }],
      ["POST", `/families/${FAMILY}/tables/${TABLE}`, {
        headers: ADMIN,
        json: { fields: [["k", "string"], ["v", "string"]], keyFields: ["k"] },
      }],
      ["POST", `/writers/${WRITER}`, { headers: ADMIN, body: WRITER_SECRET }],
      ["POST", `/limits/writers/${WRITER}`, {
        headers: ADMIN,
        json: { amount: 100_000_000, period: "1m" },
      }],
    ];
    for (const [method, path, init] of steps) {
      const res = await call(url, method, path, init);
      if (res.status !== 200) {
        throw new Error(`ctl set-up ${method} ${path}: ${res.status} ${JSON.stringify(res.json)}`);
      }
    }
  }

  async leaderUrl(): Promise<string> {
    return (await this.cluster.leader(30_000)).url;
  }

  async followerUrl(): Promise<string> {
    const leader = await this.cluster.leader(30_000);
    const m = this.cluster.members.find((x) => x.process.running && x.id !== leader.id);
    if (!m) throw new Error("no running ctl follower");
    return m.url;
  }

  async write(
    poster: Poster,
    url: string,
    rows: number,
    keyBase: number,
    signal?: AbortSignal,
  ) {
    return (await ctlWriteSeq(poster, url, rows, keyBase, signal)) !== undefined;
  }

  async killLeader(atKill: () => void): Promise<string> {
    const leader = await this.cluster.leader(30_000);
    atKill();
    await this.cluster.member(leader.id).process.kill("SIGKILL");
    return leader.id;
  }

  async restart(id: string): Promise<void> {
    this.cluster.member(id).process.start();
    await waitFor(`ctl ${id} to answer /status`, () => this.cluster.status(id), 30_000);
    await this.cluster.leader(30_000);
  }

  async stop(): Promise<void> {
    await this.cluster.stop();
  }
}

export { ADMIN_TOKEN, CLUSTER_SECRET };

// ---------------------------------------------------------------------------------------------
// etcd

/** Where Debian puts etcd; `--etcd PATH` overrides. */
export const ETCD_DEFAULT = "/usr/bin/etcd";
export const ETCD_INSTALL_HINT =
  "etcd is not installed: `apt-get update && apt-get install -y etcd-server etcd-client` " +
  "(Debian's etcd 3.4), or pass --etcd /path/to/etcd";

const b64 = (s: string) => btoa(s);

interface EtcdMember {
  id: string;
  clientUrl: string;
  args: string[];
  logFile: string;
  proc: Deno.ChildProcess | null;
}

export class EtcdSystem implements KvSystem {
  readonly name = "etcd" as const;
  readonly members: EtcdMember[];

  private constructor(readonly binary: string, readonly dir: string) {
    const ports = freePorts(6);
    const peer = (i: number) => `http://127.0.0.1:${ports[3 + i]}`;
    const initial = [0, 1, 2].map((i) => `m${i + 1}=${peer(i)}`).join(",");
    this.members = [0, 1, 2].map((i) => {
      const id = `m${i + 1}`;
      const clientUrl = `http://127.0.0.1:${ports[i]}`;
      return {
        id,
        clientUrl,
        logFile: join(dir, `${id}.log`),
        proc: null,
        args: [
          "--name",
          id,
          "--data-dir",
          join(dir, id),
          "--listen-client-urls",
          clientUrl,
          "--advertise-client-urls",
          clientUrl,
          "--listen-peer-urls",
          peer(i),
          "--initial-advertise-peer-urls",
          peer(i),
          "--initial-cluster",
          initial,
          "--initial-cluster-state",
          "new",
          "--initial-cluster-token",
          "ctl-bench",
          "--logger",
          "zap",
          "--log-outputs",
          "stderr",
        ],
      };
    });
  }

  /** Is there an etcd binary at `binary`? */
  static available(binary: string): boolean {
    try {
      return Deno.statSync(binary).isFile;
    } catch {
      return false;
    }
  }

  static async version(binary: string): Promise<string> {
    const out = await new Deno.Command(binary, { args: ["--version"], stdout: "piped" }).output();
    return new TextDecoder().decode(out.stdout).split("\n")[0].trim();
  }

  static async start(binary: string, dir: string): Promise<EtcdSystem> {
    const s = new EtcdSystem(binary, join(dir, "etcd"));
    Deno.mkdirSync(s.dir, { recursive: true });
    for (const m of s.members) s.spawn(m);
    try {
      await s.leaderUrl();
    } catch (e) {
      await s.stop();
      throw e;
    }
    return s;
  }

  private spawn(m: EtcdMember): void {
    const out = Deno.openSync(m.logFile, { create: true, append: true });
    m.proc = new Deno.Command(this.binary, {
      args: m.args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    pipeOutputToFile(m.proc, out);
  }

  /** `member_id` and `leader` from a member's maintenance status. */
  private async status(m: EtcdMember): Promise<{ self: string; leader: string } | undefined> {
    try {
      const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, {
        method: "POST",
        body: "{}",
        signal: AbortSignal.timeout(1000),
      });
      const j = await res.json();
      if (!j?.header?.member_id || !j.leader || j.leader === "0") return undefined;
      return { self: String(j.header.member_id), leader: String(j.leader) };
    } catch {
      return undefined;
    }
  }

  private leaderMember(): Promise<EtcdMember> {
    return waitFor("an etcd leader all running members agree on", async () => {
      const running = this.members.filter((m) => m.proc);
      const st = await Promise.all(running.map((m) => this.status(m)));
      if (st.some((x) => x === undefined)) return undefined;
      const leaders = new Set(st.map((x) => x!.leader));
      if (leaders.size !== 1) return undefined;
      const i = st.findIndex((x) => x!.self === x!.leader);
      return i >= 0 ? running[i] : undefined;
    }, 30_000);
  }

  async leaderUrl(): Promise<string> {
    return (await this.leaderMember()).clientUrl;
  }

  async followerUrl(): Promise<string> {
    const leader = await this.leaderMember();
    const m = this.members.find((x) => x.proc && x !== leader);
    if (!m) throw new Error("no running etcd follower");
    return m.clientUrl;
  }

  async write(
    poster: Poster,
    url: string,
    rows: number,
    keyBase: number,
    signal?: AbortSignal,
  ) {
    const value = `${keyBase}${VALUE_PAD}`.slice(0, 32);
    let path: string;
    let body: unknown;
    if (rows === 1) {
      path = "/v3/kv/put";
      body = { key: b64(`${FAMILY}/${TABLE}/${keyOf(keyBase)}`), value: b64(value) };
    } else {
      path = "/v3/kv/txn";
      const success = [];
      for (let j = 0; j < rows; j++) {
        success.push({
          request_put: { key: b64(`${FAMILY}/${TABLE}/${keyOf(keyBase + j)}`), value: b64(value) },
        });
      }
      body = { success };
    }
    const res = await poster.post(
      `${url}${path}`,
      { "content-type": "application/json" },
      JSON.stringify(body),
      signal,
    );
    return res.status === 200;
  }

  async killLeader(atKill: () => void): Promise<string> {
    const leader = await this.leaderMember();
    const p = leader.proc!;
    leader.proc = null;
    atKill();
    p.kill("SIGKILL");
    await p.status;
    return leader.id;
  }

  async restart(id: string): Promise<void> {
    const m = this.members.find((x) => x.id === id)!;
    // On a restart etcd reads its membership from the data directory.
    m.args = m.args.map((a) => a === "new" ? "existing" : a);
    this.spawn(m);
    await this.leaderMember();
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map(async (m) => {
      const p = m.proc;
      m.proc = null;
      if (!p) return;
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
      await p.status;
    }));
  }
}
