/**
 * A cluster of executives, each in its own network namespace (see `net.ts`), started from any
 * copy of the tree (`bites.ts` runs a patched copy). Members can be killed, paused, restarted,
 * given a clock offset (libfaketime) or a small disk (tmpfs).
 */
import {
  ADMIN_TOKEN,
  CLUSTER_SECRET,
  type ExecutiveStatus,
  LoggedProcess,
  waitFor,
} from "../system/harness.ts";
import { LIBFAKETIME, Network, SmallDisk } from "./net.ts";

/** The tree's entry point, unless a run passes another copy's. */
export const DEFAULT_MAIN = new URL("../../main.ts", import.meta.url).pathname;
const DELAY_PROXY = new URL("./delay_proxy.ts", import.meta.url).pathname;

/** Options of a fault cluster. */
export interface FaultClusterOptions {
  size: number;
  dir: string;
  /** main.ts of the tree to run (default: this tree). */
  main?: string;
  /** Members that run under libfaketime, with a clock offset file each. */
  fakeClock?: string[];
  /** Members whose data directory is a tmpfs of this many MiB. */
  smallDisk?: { ids: string[]; sizeMb: number };
  /** Run every member behind a delay proxy (`delay_proxy.ts`), for latency faults. */
  delayProxy?: boolean;
  extraArgs?: string[];
}

export interface FaultMember {
  id: string;
  url: string;
  dataDir: string;
  process: LoggedProcess;
  disk?: SmallDisk;
  clockFile?: string;
  /** The delay proxies in front of the executive and its peer port, and their control file. */
  proxy?: { processes: LoggedProcess[]; controlFile: string };
}

/** Executives in namespaces. */
export class FaultCluster {
  members: FaultMember[] = [];

  private constructor(readonly net: Network, readonly options: FaultClusterOptions) {}

  static async create(options: FaultClusterOptions): Promise<FaultCluster> {
    const ids = Array.from({ length: options.size }, (_, i) => `e${i + 1}`);
    const net = await Network.create(ids);
    const cluster = new FaultCluster(net, options);
    try {
      await cluster.#init(ids);
    } catch (e) {
      await cluster.destroy();
      throw e;
    }
    return cluster;
  }

  async #init(ids: string[]): Promise<void> {
    const o = this.options;
    const peers = ids.map((id) => `${id}=${this.net.url(id)}`).join(",");
    const deno = Deno.execPath();
    for (const id of ids) {
      const dataDir = `${o.dir}/${id}`;
      const member: FaultMember = { id, url: this.net.url(id), dataDir, process: null! };
      if (o.smallDisk?.ids.includes(id)) {
        member.disk = await SmallDisk.mount(dataDir, o.smallDisk.sizeMb);
      }
      const env: Record<string, string> = {};
      if (o.fakeClock?.includes(id)) {
        member.clockFile = `${o.dir}/${id}.faketime`;
        await Deno.writeTextFile(member.clockFile, "+0\n");
        Object.assign(env, {
          LD_PRELOAD: LIBFAKETIME,
          FAKETIME_TIMESTAMP_FILE: member.clockFile,
          FAKETIME_CACHE_DURATION: "1",
          DONT_FAKE_MONOTONIC: "1",
        });
      }
      member.process = new LoggedProcess(
        id,
        [
          ...this.net.prefix(id),
          deno,
          "run",
          "--allow-all",
          o.main ?? DEFAULT_MAIN,
          "--log-format",
          "json",
          "executive",
          "--id",
          id,
          "--data",
          dataDir,
          "--peers",
          peers,
          "--listen",
          `${this.net.node(id).ip}:${this.net.port}`,
          // A fixed peer port, so that the cuts and the delay proxy can name it.
          "--peer-listen",
          `${this.net.node(id).ip}:${this.net.peerPort}`,
          "--cluster-secret",
          CLUSTER_SECRET,
          "--admin-token",
          ADMIN_TOKEN,
          "--destructive-changes",
          ...(o.extraArgs ?? []),
        ],
        `${o.dir}/${id}.log`,
        env,
      );
      if (o.delayProxy) {
        const controlFile = `${o.dir}/${id}.delay`;
        await Deno.writeTextFile(controlFile, "0 0\n");
        const proxies = [
          ["proxy", this.net.proxyPort, this.net.port],
          ["peer-proxy", this.net.peerProxyPort, this.net.peerPort],
        ].map(([name, listen, target]) =>
          new LoggedProcess(
            `${id}-${name}`,
            [
              ...this.net.prefix(id),
              deno,
              "run",
              "--allow-all",
              DELAY_PROXY,
              String(listen),
              `${this.net.node(id).ip}:${target}`,
              controlFile,
            ],
            `${o.dir}/${id}-${name}.log`,
          )
        );
        member.proxy = { processes: proxies, controlFile };
        await this.net.redirectToProxy(id);
      }
      this.members.push(member);
    }
  }

  /** Delays everything member `id` receives and sends back by `delayMs` ± `jitterMs`. */
  async setDelay(id: string, delayMs: number, jitterMs: number): Promise<void> {
    const proxy = this.member(id).proxy;
    if (!proxy) throw new Error(`Member ${id} runs without a delay proxy`);
    await Deno.writeTextFile(proxy.controlFile, `${delayMs} ${jitterMs}\n`);
  }

  get urls(): string[] {
    return this.members.map((m) => m.url);
  }

  get ids(): string[] {
    return this.members.map((m) => m.id);
  }

  member(id: string): FaultMember {
    const m = this.members.find((x) => x.id === id);
    if (!m) throw new Error(`No member ${id}`);
    return m;
  }

  start(): void {
    for (const m of this.members) {
      for (const p of m.proxy?.processes ?? []) p.start();
      m.process.start();
    }
  }

  async status(id: string, timeoutMs = 1000): Promise<ExecutiveStatus | undefined> {
    try {
      const res = await fetch(`${this.member(id).url}/status`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      return await res.json() as ExecutiveStatus;
    } catch {
      return undefined;
    }
  }

  /** The leader as the members that answer see it (majority of answers), or null. */
  async currentLeader(): Promise<string | null> {
    const statuses = await Promise.all(this.ids.map((id) => this.status(id, 500)));
    const votes = new Map<string, number>();
    for (const s of statuses) if (s?.leader) votes.set(s.leader, (votes.get(s.leader) ?? 0) + 1);
    let best: string | null = null;
    let bestVotes = 0;
    for (const [id, n] of votes) if (n > bestVotes) [best, bestVotes] = [id, n];
    return best;
  }

  /** The leader every running member agrees on. */
  leader(timeoutMs = 20_000): Promise<{ id: string; url: string }> {
    return waitFor(
      "a leader all running members agree on",
      async () => {
        const running = this.members.filter((m) => m.process.running);
        const statuses = await Promise.all(running.map((m) => this.status(m.id)));
        const leaders = new Set(statuses.map((s) => s?.leader ?? null));
        if (leaders.size !== 1) return undefined;
        const leader = [...leaders][0];
        if (!leader || !running.some((m) => m.id === leader)) return undefined;
        return { id: leader, url: this.member(leader).url };
      },
      timeoutMs,
      100,
    );
  }

  /** Sets member `id`'s clock offset (libfaketime syntax: `+2h`, `-30m`, `+0`). */
  async setClock(id: string, offset: string): Promise<void> {
    const file = this.member(id).clockFile;
    if (!file) throw new Error(`Member ${id} does not run under libfaketime`);
    await Deno.writeTextFile(file, `${offset}\n`);
  }

  async stop(): Promise<void> {
    for (const m of this.members) if (m.process.paused) m.process.signal("SIGCONT");
    await Promise.all(this.members.map((m) => m.process.kill("SIGKILL")));
    await Promise.all(
      this.members.flatMap((m) => (m.proxy?.processes ?? []).map((p) => p.kill("SIGKILL"))),
    );
  }

  /** Stops every process, unmounts the disks and removes the namespaces. */
  async destroy(): Promise<void> {
    await this.stop();
    for (const m of this.members) await m.disk?.unmount();
    await this.net.destroy();
  }
}
