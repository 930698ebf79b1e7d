/**
 * The machine side of the nemesis: Debian packages the suite needs, one network namespace per
 * executive on a private bridge, and the faults applied to it (iptables partitions; latency
 * through `delay_proxy.ts`, since this kernel has no `netem`), plus small tmpfs disks.
 *
 * Layout of one run (`id` is a small number unique on this machine):
 *
 * ```
 * root namespace (test process, clients, reflectors)   bridge cfb<id>  10.<a>.<b>.1/24
 *   ├── veth cfv<id>n<i> ── namespace cf<id>n<i>: eth0 10.<a>.<b>.<10+i>  executive e<i>
 * ```
 *
 * Partitions are iptables rules in the receiving member's namespace that drop packets from
 * another member's address; the test process (the bridge address) is never cut off, as the
 * Jepsen control node is not.
 */

/** Runs a command; returns its exit code and output (never throws on a non-zero exit). */
export async function sh(
  cmd: string[],
  options: { allowFail?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const res = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (res.code !== 0 && !options.allowFail) {
    throw new Error(`Command failed (${res.code}): ${cmd.join(" ")}: ${res.stderr.trim()}`);
  }
  return res;
}

async function has(binary: string): Promise<boolean> {
  return (await sh(["sh", "-c", `command -v ${binary}`], { allowFail: true })).code === 0;
}

/** Where libfaketime's preload library lives once the `faketime` package is installed. */
export const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/**
 * Installs the Debian packages the fault suite uses when they are missing: `iptables`
 * (partitions, the delay proxy's redirect), `iproute2` (ip) and `faketime` (libfaketime, for clock jumps). Runs
 * `apt-get update` once, only when something is missing.
 */
export async function ensurePackages(): Promise<void> {
  const missing: string[] = [];
  if (!(await has("iptables"))) missing.push("iptables");
  if (!(await has("ip"))) missing.push("iproute2");
  try {
    await Deno.stat(LIBFAKETIME);
  } catch {
    missing.push("faketime");
  }
  if (missing.length === 0) return;
  console.error(`fault: installing Debian packages: ${missing.join(" ")}`);
  const env = ["env", "DEBIAN_FRONTEND=noninteractive"];
  await sh([...env, "apt-get", "update", "-qq"]);
  await sh([...env, "apt-get", "install", "-y", "-qq", ...missing]);
}

/** Whether this machine lets us create network namespaces and mount tmpfs (root, CAP_NET_ADMIN). */
export async function namespacesWork(): Promise<boolean> {
  if (Deno.build.os !== "linux") return false;
  const name = `cfprobe${Deno.pid % 100000}`;
  const add = await sh(["ip", "netns", "add", name], { allowFail: true });
  if (add.code !== 0) return false;
  await sh(["ip", "netns", "del", name], { allowFail: true });
  return true;
}

let nextRunId = Deno.pid % 150;

/** One executive's place on the network. */
export interface NetNode {
  /** Member id, e.g. `e1`. */
  id: string;
  ns: string;
  ip: string;
}

/** How a fault cuts links: `drop` both ways, or only requests from `from` to `to`. */
export interface Cut {
  /** The member whose packets are dropped. */
  from: string;
  /** The member that drops them. */
  to: string;
}

/** A private bridge with one namespace per member. */
export class Network {
  readonly bridge: string;
  readonly hostIp: string;
  readonly nodes: NetNode[];
  #cuts: Cut[] = [];

  /** Where a member's delay proxy listens, in its namespace. */
  readonly proxyPort: number;
  /** Each member's peer port (`--peer-listen`), and where its delay proxy listens. */
  readonly peerPort: number;
  readonly peerProxyPort: number;

  private constructor(readonly runId: number, ids: string[], readonly port: number) {
    this.proxyPort = port + 100;
    this.peerPort = port + 1;
    this.peerProxyPort = port + 101;
    const a = 10;
    const b = 100 + (runId % 150);
    this.bridge = `cfb${runId}`;
    this.hostIp = `${a}.${b}.0.1`;
    this.nodes = ids.map((id, i) => ({
      id,
      ns: `cf${runId}n${i + 1}`,
      ip: `${a}.${b}.0.${10 + i}`,
    }));
  }

  /** Creates the bridge and namespaces for members `ids`; remove with `destroy()`. */
  static async create(ids: string[], port = 7001): Promise<Network> {
    // A run id whose names are all free (namespaces of an earlier run may linger a while).
    const links = (await sh(["ip", "-o", "link", "show"])).stdout;
    const spaces = (await sh(["ip", "netns", "list"])).stdout;
    const taken = (id: number) =>
      links.includes(`cfb${id}:`) || links.includes(`cfv${id}n`) || spaces.includes(`cf${id}n`);
    let runId = nextRunId++ % 150;
    for (let i = 0; i < 150 && taken(runId); i++) runId = nextRunId++ % 150;
    if (taken(runId)) throw new Error("No free fault network id: run `run.ts --cleanup`");
    const net = new Network(runId, ids, port);
    try {
      await net.#build();
    } catch (e) {
      await net.destroy();
      throw e;
    }
    return net;
  }

  async #build(): Promise<void> {
    await sh(["ip", "link", "add", this.bridge, "type", "bridge"]);
    await sh(["ip", "addr", "add", `${this.hostIp}/24`, "dev", this.bridge]);
    await sh(["ip", "link", "set", this.bridge, "up"]);
    for (const [i, n] of this.nodes.entries()) {
      const host = `cfv${this.runId}n${i + 1}`;
      await sh(["ip", "netns", "add", n.ns]);
      await sh(["ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", n.ns]);
      await sh(["ip", "link", "set", host, "master", this.bridge]);
      await sh(["ip", "link", "set", host, "up"]);
      await this.exec(n.id, ["ip", "link", "set", "lo", "up"]);
      await this.exec(n.id, ["ip", "addr", "add", `${n.ip}/24`, "dev", "eth0"]);
      await this.exec(n.id, ["ip", "link", "set", "eth0", "up"]);
      await this.exec(n.id, ["ip", "route", "add", "default", "via", this.hostIp]);
    }
    // Bridged frames may go through the root namespace's iptables (br_netfilter): let ours pass.
    await sh(["iptables", "-I", "FORWARD", "-i", this.bridge, "-j", "ACCEPT"], { allowFail: true });
  }

  node(id: string): NetNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`No network node ${id}`);
    return n;
  }

  url(id: string): string {
    return `http://${this.node(id).ip}:${this.port}`;
  }

  /** Runs a command inside member `id`'s namespace. */
  exec(id: string, cmd: string[], allowFail = false) {
    return sh(["ip", "netns", "exec", this.node(id).ns, ...cmd], { allowFail });
  }

  /** The command prefix that runs a program inside member `id`'s namespace. */
  prefix(id: string): string[] {
    return ["ip", "netns", "exec", this.node(id).ns];
  }

  /** The links currently cut. */
  get cuts(): readonly Cut[] {
    return this.#cuts;
  }

  /**
   * Drops requests from `cut.from` to `cut.to`: in `to`'s namespace, every packet from `from`'s
   * address to the executive port or the peer port. `to` can still call `from` (its requests go
   * out and the answers come back from those ports), so a cut one way only is a one-way
   * partition.
   */
  async cut(c: Cut): Promise<void> {
    const from = this.node(c.from);
    // The delay proxies' ports too: a redirected connection reaches INPUT with that port.
    for (const port of [this.port, this.proxyPort, this.peerPort, this.peerProxyPort]) {
      await this.exec(c.to, [
        "iptables",
        "-A",
        "INPUT",
        "-s",
        from.ip,
        "-p",
        "tcp",
        "--dport",
        String(port),
        "-j",
        "DROP",
      ]);
    }
    this.#cuts.push(c);
  }

  /** Cuts every link between group `a` and group `b`, both ways. */
  async partition(a: string[], b: string[]): Promise<void> {
    for (const x of a) {
      for (const y of b) {
        await this.cut({ from: x, to: y });
        await this.cut({ from: y, to: x });
      }
    }
  }

  /**
   * Sends every connection arriving for the executive port (and the peer port) of member `id`
   * through the delay proxy listening on `proxyPort` (`peerProxyPort`) in its namespace (see `delay_proxy.ts`: this kernel has no
   * `netem`).
   */
  async redirectToProxy(id: string): Promise<void> {
    for (
      const [port, proxy] of [[this.port, this.proxyPort], [this.peerPort, this.peerProxyPort]]
    ) {
      await this.exec(id, [
        "iptables",
        "-t",
        "nat",
        "-A",
        "PREROUTING",
        "-p",
        "tcp",
        "--dport",
        String(port),
        "-j",
        "REDIRECT",
        "--to-ports",
        String(proxy),
      ]);
    }
  }

  /** Removes every cut. */
  async heal(): Promise<void> {
    for (const n of this.nodes) await this.exec(n.id, ["iptables", "-F", "INPUT"], true);
    this.#cuts = [];
  }

  async destroy(): Promise<void> {
    for (const [i, n] of this.nodes.entries()) {
      // Deleting the host end removes the pair now; a namespace's own cleanup may lag.
      await sh(["ip", "link", "del", `cfv${this.runId}n${i + 1}`], { allowFail: true });
      await sh(["ip", "netns", "del", n.ns], { allowFail: true });
    }
    await sh(["iptables", "-D", "FORWARD", "-i", this.bridge, "-j", "ACCEPT"], { allowFail: true });
    await sh(["ip", "link", "del", this.bridge], { allowFail: true });
  }
}

/** A small tmpfs mounted at `dir`, filled and emptied on demand: a disk that runs out. */
export class SmallDisk {
  #fill = 0;
  private constructor(readonly dir: string) {}

  static async mount(dir: string, sizeMb: number): Promise<SmallDisk> {
    await Deno.mkdir(dir, { recursive: true });
    await sh(["mount", "-t", "tmpfs", "-o", `size=${sizeMb}m`, "tmpfs", dir]);
    return new SmallDisk(dir);
  }

  /** Writes filler files until the disk is full. */
  async fill(): Promise<void> {
    const path = `${this.dir}/.fault-fill-${this.#fill++}`;
    await sh(["sh", "-c", `dd if=/dev/zero of=${path} bs=1M 2>/dev/null; true`]);
  }

  /** Removes the filler files. */
  async free(): Promise<void> {
    for (let i = 0; i < this.#fill; i++) {
      await Deno.remove(`${this.dir}/.fault-fill-${i}`).catch(() => {});
    }
    this.#fill = 0;
  }

  async unmount(): Promise<void> {
    await sh(["umount", "-l", this.dir], { allowFail: true });
  }
}

/**
 * Removes what an interrupted run left behind: every `cf<N>n<M>` namespace (killing the processes
 * in it), `cfb<N>` bridge and tmpfs under `ctl-fault-` directories. Only for a machine where no
 * other fault run is going on.
 */
export async function cleanupStale(): Promise<string[]> {
  const removed: string[] = [];
  const list = (await sh(["ip", "netns", "list"], { allowFail: true })).stdout;
  for (
    const ns of list.split("\n").map((l) => l.split(" ")[0]).filter((n) => /^cf\d+n\d+$/.test(n))
  ) {
    const pids = (await sh(["ip", "netns", "pids", ns], { allowFail: true })).stdout.trim();
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch { /* gone */ }
    }
    await sh(["ip", "netns", "del", ns], { allowFail: true });
    removed.push(ns);
  }
  const links = (await sh(["ip", "-o", "link", "show"])).stdout;
  for (const m of links.matchAll(/^\d+: (cf[bv]\d+(?:n\d+)?)[:@]/gm)) {
    await sh(["iptables", "-D", "FORWARD", "-i", m[1], "-j", "ACCEPT"], { allowFail: true });
    await sh(["ip", "link", "del", m[1]], { allowFail: true });
    removed.push(m[1]);
  }
  const mounts = await Deno.readTextFile("/proc/mounts");
  for (const line of mounts.split("\n")) {
    const [, dir, type] = line.split(" ");
    if (type === "tmpfs" && dir?.includes("/ctl-fault-")) {
      await sh(["umount", "-l", dir], { allowFail: true });
      removed.push(dir);
    }
  }
  return removed;
}
