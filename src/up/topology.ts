/**
 * The local topology `ctl up` runs: which processes, with which flags, where their data and
 * logs live. Pure: it only computes the plan, so it is tested without starting anything.
 */

/** One child process of `ctl up`. */
export interface ChildPlan {
  /** Unique, e.g. "e1", "reflector". */
  name: string;
  component: "executive" | "reflector" | "heartbeat" | "sidecar" | "supervisor";
  /** The `ctl` arguments (subcommand first). */
  args: string[];
  /** What to show in the status table: a URL or a path. */
  address: string;
  /** GET this URL; healthy when it answers 2xx. Null: healthy while running. */
  healthUrl: string | null;
}

/** The secrets of a local topology, generated once and kept in DIR/up.json. */
export interface UpSecrets {
  adminToken: string;
  clusterSecret: string;
  heartbeatSecret: string;
}

/** Inputs of the plan. */
export interface UpOptions {
  dir: string;
  executives: number;
  host: string;
  basePort: number;
  sidecarPort: number;
  /** The first of three status ports: reflector, heartbeat, supervisor. */
  reflectorPort: number;
  heartbeatIntervalMs: number;
  snapshotIntervalMs: number;
  secrets: UpSecrets;
}

/** The executives' base URLs, in member order. */
export function executiveUrls(o: UpOptions): string[] {
  return Array.from({ length: o.executives }, (_, i) => `http://${o.host}:${o.basePort + i}`);
}

/** Every child of the topology, executives first (the others need them). */
export function planTopology(o: UpOptions): ChildPlan[] {
  if (!Number.isInteger(o.executives) || o.executives < 3) {
    throw new RangeError(`a cluster needs 3 or more executives, not ${o.executives}`);
  }
  const urls = executiveUrls(o);
  const peers = urls.map((u, i) => `e${i + 1}=${u}`).join(",");
  const ldb = `${o.dir}/ldb/ldb.db`;
  const children: ChildPlan[] = urls.map((url, i) => ({
    name: `e${i + 1}`,
    component: "executive",
    args: [
      "executive",
      "--id",
      `e${i + 1}`,
      "--data",
      `${o.dir}/executives/e${i + 1}`,
      "--peers",
      peers,
      "--listen",
      `${o.host}:${o.basePort + i}`,
      "--cluster-secret",
      o.secrets.clusterSecret,
      "--admin-token",
      o.secrets.adminToken,
      "--destructive-changes",
    ],
    address: url,
    healthUrl: `${url}/status`,
  }));
  const reflectorUrl = `http://${o.host}:${o.reflectorPort}`;
  const sidecarUrl = `http://${o.host}:${o.sidecarPort}`;
  children.push(
    {
      name: "reflector",
      component: "reflector",
      args: [
        "reflector",
        "--ldb",
        ldb,
        "--executive",
        urls.join(","),
        "--changelog",
        `${o.dir}/ldb/changelog.ndjson`,
        "--listen",
        `${o.host}:${o.reflectorPort}`,
      ],
      address: `${ldb} (status ${reflectorUrl}/status)`,
      healthUrl: `${reflectorUrl}/status`,
    },
    {
      name: "heartbeat",
      component: "heartbeat",
      args: [
        "heartbeat",
        "--executive",
        urls.join(","),
        "--admin-token",
        o.secrets.adminToken,
        "--writer-secret",
        o.secrets.heartbeatSecret,
        "--interval",
        `${o.heartbeatIntervalMs}ms`,
        "--listen",
        `${o.host}:${o.reflectorPort + 1}`,
      ],
      address: `ctlstore.heartbeats (metrics http://${o.host}:${o.reflectorPort + 1}/metrics)`,
      healthUrl: `http://${o.host}:${o.reflectorPort + 1}/metrics`,
    },
    {
      name: "sidecar",
      component: "sidecar",
      args: ["sidecar", "--ldb", ldb, "--listen", `${o.host}:${o.sidecarPort}`],
      address: sidecarUrl,
      healthUrl: `${sidecarUrl}/ping`,
    },
    {
      name: "supervisor",
      component: "supervisor",
      args: [
        "supervisor",
        "--ldb",
        ldb,
        "--snapshot-url",
        `file://${o.dir}/snapshots`,
        "--interval",
        `${o.snapshotIntervalMs}ms`,
        "--listen",
        `${o.host}:${o.reflectorPort + 2}`,
      ],
      address: `${o.dir}/snapshots (metrics http://${o.host}:${o.reflectorPort + 2}/metrics)`,
      healthUrl: `http://${o.host}:${o.reflectorPort + 2}/metrics`,
    },
  );
  return children;
}
