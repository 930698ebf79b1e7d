/**
 * `ctl executive`: one member of the executive cluster. It hosts a Raft node and the system of
 * record, and serves the write API and the ledger on one port, and takes Raft peer streams on a
 * peer port of its own (or on the same port, with `--peer-listen off`).
 *
 * First start: `--id` and `--peers` (a new cluster) or `--join URL` (an existing one). Every
 * setting is saved in DATA/executive.json, so a restart needs only `--data`.
 */
import { ensureDir, writeFileAtomic } from "../src/util/durable_file.ts";
import { type ExecutiveServerOptions, startExecutive } from "../src/executive/server.ts";
import { log } from "../src/util/log.ts";
import { type CommandSpec, UsageError } from "./cli.ts";
import { parseListen, untilSignal } from "./serve.ts";

/** What a member saves at its first start, so a restart needs only the data directory. */
interface SavedSettings {
  listen: string;
  /** HOST:PORT, or "off"; absent in files written before the peer port existed. */
  peerListen?: string;
  advertise: string;
  clusterSecret: string;
  adminToken: string;
  destructiveChanges: boolean;
}

const SETTINGS_FILE = "executive.json";

async function readSaved(dataDir: string): Promise<Partial<SavedSettings>> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dataDir}/${SETTINGS_FILE}`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw new UsageError(`Cannot read ${dataDir}/${SETTINGS_FILE}: ${(e as Error).message}`);
  }
}

async function saveSettings(dataDir: string, settings: SavedSettings): Promise<void> {
  await ensureDir(dataDir);
  const path = `${dataDir}/${SETTINGS_FILE}`;
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(settings, null, 2) + "\n"));
  await Deno.chmod(path, 0o600);
}

/**
 * Spreads members' snapshot points over ±20% of the threshold, derived from the member id, so
 * that the members do not all pause to snapshot at the same log index.
 */
export function jitteredSnapshotEntries(entries: number, memberId: string): number {
  let h = 2166136261;
  for (const ch of memberId) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  // Final avalanche (murmur3's fmix32), so that ids differing in one letter land far apart.
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return Math.max(1, Math.round(entries * (0.8 + 0.4 * (h / 2 ** 32))));
}

/** The Raft node's settings from the command's flags. */
export function raftSettings(
  opts: Record<string, unknown>,
  memberId: string,
): NonNullable<ExecutiveServerOptions["raft"]> {
  return {
    tickMs: Number(opts.tick),
    electionTicks: Number(opts.electionTicks),
    commitHoldMs: Number(opts.commitHold),
    followerFsyncWaitMs: Number(opts.followerFsyncWait),
    snapshotEntries: jitteredSnapshotEntries(Number(opts.snapshotEntries), memberId),
    compactKeepEntries: Number(opts.compactKeep),
  };
}

async function readNodeId(dataDir: string): Promise<string> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dataDir}/raft/node.json`)).id ?? "";
  } catch {
    return "";
  }
}

/** Parses `e1=http://a:7001,e2=http://b:7001`. */
export function parsePeers(items: string[]): Record<string, string> {
  const peers: Record<string, string> = {};
  for (const item of items) {
    const m = /^([^=]+)=(https?:\/\/.+)$/.exec(item);
    if (!m) throw new UsageError(`--peers item "${item}" is not ID=URL (e.g. e1=http://a:7001)`);
    if (peers[m[1]]) throw new UsageError(`--peers names "${m[1]}" twice`);
    peers[m[1]] = m[2].replace(/\/+$/, "");
  }
  return peers;
}

/** Asks a member of a running cluster for its peers and to add this member as a learner. */
async function joinCluster(
  joinUrl: string,
  id: string,
  advertise: string,
): Promise<Record<string, string>> {
  const base = joinUrl.replace(/\/+$/, "");
  const res = await fetch(`${base}/status`);
  if (!res.ok) throw new Error(`Cannot join via ${base}: GET /status answered ${res.status}`);
  const status = await res.json() as { members: { id: string; url: string | null }[] };
  const peers: Record<string, string> = { [id]: advertise };
  for (const m of status.members) if (m.url && m.id !== id) peers[m.id] = m.url;
  return peers;
}

async function requestMembership(
  joinUrl: string,
  id: string,
  advertise: string,
  adminToken: string,
): Promise<void> {
  const base = joinUrl.replace(/\/+$/, "");
  for (let attempt = 1;; attempt++) {
    // Joins as a learner; the leader promotes it to voter once it has caught up.
    const res = await fetch(`${base}/v1/cluster/members`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ id, url: advertise, voter: true }),
    });
    const text = await res.text();
    if (res.ok) return;
    if (res.status !== 503 || attempt >= 20) {
      throw new Error(
        `Cannot join via ${base}: adding learner ${id} answered ${res.status} ${text}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The `ctl executive` command. */
export const executiveCommand: CommandSpec = {
  name: "executive",
  summary: "run one member of the executive cluster (Raft + system of record + write API)",
  description: "Runs one executive: a Raft member that replicates the system of record and " +
    "serves ctlstore's write API, the ledger (/v1/ledger, /v1/ledger/stream), cluster " +
    "membership (/v1/cluster) and Raft peer traffic (/raft/) on one port; peers stream Raft " +
    "messages to a peer port of its own (--peer-listen).\n" +
    "First start: --id with --peers (a new cluster of 3 or more) or --join URL (an existing " +
    "cluster: the member joins as a learner and becomes a voter once caught up).\n" +
    "Restart: --data alone; the rest is read from DATA/executive.json.",
  flags: [
    { name: "data", type: "string", help: "data directory", required: true, placeholder: "DIR" },
    { name: "id", type: "string", help: "this member's id (first start)", placeholder: "ID" },
    {
      name: "peers",
      type: "list",
      help: "every initial member as ID=URL, comma-separated, self included (new cluster)",
      placeholder: "ID=URL,...",
    },
    {
      name: "join",
      type: "string",
      help: "URL of a member of a running cluster to join as a learner",
      placeholder: "URL",
    },
    {
      name: "listen",
      type: "string",
      help: "bind address (first start default: this member's port from --peers, all interfaces)",
      placeholder: "HOST:PORT",
    },
    {
      name: "peer-listen",
      type: "string",
      help: "where other members stream Raft traffic to this one, on plain TCP (port 0: any " +
        'free port; members learn it from GET /raft/peer-port); "off": over HTTP on the ' +
        "--listen port (first start default: --listen's host, port 0)",
      placeholder: "HOST:PORT|off",
    },
    {
      name: "advertise",
      type: "string",
      help: "URL other members reach this one at (default: from --peers)",
      placeholder: "URL",
    },
    { name: "cluster-secret", type: "string", help: "secret shared by all members (peer auth)" },
    { name: "admin-token", type: "string", help: "bearer token for admin routes" },
    { name: "destructive-changes", type: "bool", help: "allow drop table and clear rows" },
    { name: "tick", type: "duration", help: "Raft tick interval", default: "50ms" },
    {
      name: "commit-hold",
      type: "duration",
      help: "how long a leader holds a commit index for a caught-up follower, for the next " +
        "append to carry (0: send it alone at once; followers and the reflectors that follow " +
        "them see lone writes sooner, for one more message per write)",
      default: "1ms",
    },
    {
      name: "follower-fsync-wait",
      type: "duration",
      help: "as a follower, wait up to this long on the main thread for the Raft log's fsync " +
        "(run on a thread of the log's own) and acknowledge before applying; a slower fsync " +
        "lets the apply, and the reflectors streaming from this member, go first. 0: fsync on " +
        "the thread pool and apply meanwhile. Try 1ms where members have cores of their own",
      default: "0ms",
    },
    {
      name: "election-ticks",
      type: "int",
      help: "election timeout in ticks (randomised up to twice this)",
      default: 10,
    },
    {
      name: "ledger-retention",
      type: "int",
      help: "ledger entries kept for reflectors (0: all); older readers bootstrap from " +
        "GET /v1/snapshot",
      default: 1_000_000,
    },
    {
      name: "snapshot-entries",
      type: "int",
      help: "snapshot the SoR and compact the Raft log every N applied entries (each " +
        "snapshot copies the whole SoR: etcd's default is the same 100,000)",
      default: 100_000,
    },
    {
      name: "compact-keep",
      type: "int",
      help: "Raft log entries kept behind a snapshot, so that a follower up to that far " +
        "behind catches up from the log instead of a copy of the whole SoR",
      default: 5_000,
    },
  ],
  run: async (opts) => {
    const dataDir = String(opts.data);
    const saved = await readSaved(dataDir);
    const fresh = saved.clusterSecret === undefined;
    const peersList = (opts.peers as string[] | undefined) ?? [];
    const peers = peersList.length ? parsePeers(peersList) : undefined;
    const id = opts.id as string | undefined;
    if (fresh) {
      if (!id) throw new UsageError("a first start needs --id (and --peers or --join)");
      if (!peers && !opts.join) throw new UsageError("a first start needs --peers or --join");
      if (peers && opts.join) throw new UsageError("give --peers or --join, not both");
      if (peers && !peers[id]) throw new UsageError(`--peers does not name this member "${id}"`);
      if (peers && Object.keys(peers).length < 3) {
        throw new UsageError("a new cluster needs 3 or more members in --peers");
      }
    }
    const clusterSecret = (opts.clusterSecret as string | undefined) ?? saved.clusterSecret;
    const adminToken = (opts.adminToken as string | undefined) ?? saved.adminToken;
    if (!clusterSecret) throw new UsageError("--cluster-secret is required on a first start");
    if (!adminToken) throw new UsageError("--admin-token is required on a first start");
    const advertise = (opts.advertise as string | undefined) ?? saved.advertise ??
      (peers && id ? peers[id] : undefined);
    if (!advertise) throw new UsageError("--advertise is required with --join");
    const listen = (opts.listen as string | undefined) ?? saved.listen ??
      `0.0.0.0:${new URL(advertise).port || "80"}`;
    const peerListen = (opts.peerListen as string | undefined) ?? saved.peerListen ??
      `${parseListen(listen).hostname}:0`;
    const settings: SavedSettings = {
      listen,
      peerListen,
      advertise,
      clusterSecret,
      adminToken,
      destructiveChanges: Boolean(opts.destructiveChanges ?? saved.destructiveChanges),
    };
    const addr = parseListen(listen);

    let joinPeers: Record<string, string> | undefined;
    if (fresh && opts.join) {
      joinPeers = await joinCluster(String(opts.join), id!, advertise);
    }
    const logger = log("executive");
    const exec = await startExecutive({
      // A member whose Raft loop stopped (a full or failing disk) must not stay up serving stale
      // reads: exit, so that a supervisor (ctl up, systemd, Kubernetes) restarts it from disk.
      onFatal: (err) => {
        logger.fatal("The Raft loop stopped ({error}); exiting so that this member restarts", {
          error: err.message,
        });
        Deno.exit(70);
      },
      dataDir,
      id,
      peers: peers ?? joinPeers,
      join: Boolean(joinPeers),
      clusterSecret,
      adminToken,
      destructiveChanges: settings.destructiveChanges,
      ledgerRetentionEntries: Number(opts.ledgerRetention),
      raft: {
        ...raftSettings(opts, id ?? (await readNodeId(dataDir))),
        ...(peerListen === "off" ? {} : { peerListen: parseListen(peerListen) }),
      },
    });
    await saveSettings(dataDir, settings);
    const abort = new AbortController();
    const server = Deno.serve(
      { ...addr, signal: abort.signal, onListen: () => {} },
      exec.handler,
    );
    logger.info(
      "Executive {id} on http://{host}:{port} (peer port {peerPort}), data in {dataDir}",
      {
        id: exec.node.status().id,
        host: addr.hostname,
        port: server.addr.port,
        peerPort: exec.node.peerPort() ?? "off",
        dataDir,
      },
    );
    if (joinPeers) {
      await requestMembership(String(opts.join), id!, advertise, adminToken);
      logger.info("Joined the cluster via {url}", { url: opts.join });
    }
    const signal = await untilSignal();
    logger.info("Stopping on {signal}", { signal });
    // The node first: it ends the long-lived peer streams, so the server can drain.
    await exec.node.stop();
    abort.abort();
    // Ledger streams to reflectors are long-lived too; they reconnect elsewhere.
    await Promise.race([server.finished, new Promise((r) => setTimeout(r, 2000))]);
    await exec.stop();
    return 0;
  },
};
