/**
 * `ctl up`: the whole topology on this machine — executives, reflector, heartbeat, sidecar and
 * supervisor — as child processes on loopback, with data under one folder. Ctrl-C stops it;
 * running it again reuses the data.
 */
import Table from "cli-table3";
import { randomBytes } from "node:crypto";
import { ChildGroup, type ChildState } from "../src/up/children.ts";
import { planTopology, type UpSecrets } from "../src/up/topology.ts";
import { type CommandSpec, UsageError } from "./cli.ts";
import { untilSignal } from "./serve.ts";

async function loadSecrets(dir: string): Promise<UpSecrets> {
  const path = `${dir}/up.json`;
  try {
    const saved = JSON.parse(await Deno.readTextFile(path)) as UpSecrets;
    if (saved.adminToken && saved.clusterSecret && saved.heartbeatSecret) return saved;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new UsageError(`Cannot read ${path}: ${(e as Error).message}`);
    }
  }
  const secret = () => randomBytes(18).toString("base64url");
  const secrets = { adminToken: secret(), clusterSecret: secret(), heartbeatSecret: secret() };
  await Deno.writeTextFile(path, JSON.stringify(secrets, null, 2) + "\n", { mode: 0o600 });
  // The token alone, for shells: export CTL_ADMIN_TOKEN=$(cat .ctl/admin-token)
  await Deno.writeTextFile(`${dir}/admin-token`, secrets.adminToken + "\n", { mode: 0o600 });
  return secrets;
}

function assertPortFree(host: string, port: number, flag: string): void {
  try {
    Deno.listen({ hostname: host, port }).close();
  } catch {
    throw new UsageError(`port ${host}:${port} is in use; is ctl up already running? (${flag})`);
  }
}

/** The status table `ctl up` prints. */
export function renderStatus(states: ChildState[]): string {
  const table = new Table({
    head: ["component", "address", "state", "pid"],
    style: { head: [], border: [] },
  });
  for (const s of states) {
    table.push([s.plan.name, s.plan.address, s.state, s.pid === null ? "-" : String(s.pid)]);
  }
  return table.toString();
}

/** The `ctl up` command. */
export const upCommand: CommandSpec = {
  name: "up",
  summary: "run the whole topology on this machine (3 executives, reflector, heartbeat, sidecar, " +
    "supervisor)",
  description: "Starts the executives, a reflector, the heartbeat, the sidecar and the " +
    "supervisor as child processes on loopback, waits until all are healthy, and prints where " +
    "each one is, the admin token and commands to try. Ctrl-C stops everything; running it " +
    "again reuses the data in --dir. Logs: DIR/logs/<component>.log.",
  flags: [
    { name: "dir", type: "string", help: "folder for all data and logs", default: ".ctl" },
    { name: "executives", type: "int", help: "executives in the cluster (3 or more)", default: 3 },
    {
      name: "host",
      type: "string",
      help: "address every component binds to",
      default: "127.0.0.1",
    },
    { name: "base-port", type: "int", help: "first executive's port (then +1…)", default: 7001 },
    { name: "sidecar-port", type: "int", help: "sidecar port", default: 1331 },
    {
      name: "reflector-port",
      type: "int",
      help: "first of three status ports: reflector, heartbeat, supervisor (+1, +2)",
      default: 7100,
    },
    { name: "heartbeat-interval", type: "duration", help: "heartbeat period", default: "15s" },
    { name: "snapshot-interval", type: "duration", help: "LDB snapshot period", default: "5m" },
    {
      name: "ready-timeout",
      type: "duration",
      help: "how long to wait for every component to be healthy",
      default: "60s",
    },
  ],
  run: async (opts) => {
    const dir = await Deno.realPath(await ensure(String(opts.dir)));
    await Deno.mkdir(`${dir}/logs`, { recursive: true });
    await Deno.mkdir(`${dir}/ldb`, { recursive: true });
    await Deno.mkdir(`${dir}/snapshots`, { recursive: true });
    const host = String(opts.host);
    const executives = Number(opts.executives);
    if (executives < 3) throw new UsageError("--executives must be 3 or more");
    const basePort = Number(opts.basePort);
    for (let i = 0; i < executives; i++) assertPortFree(host, basePort + i, "--base-port");
    assertPortFree(host, Number(opts.sidecarPort), "--sidecar-port");
    for (let i = 0; i < 3; i++) {
      assertPortFree(host, Number(opts.reflectorPort) + i, "--reflector-port");
    }
    const secrets = await loadSecrets(dir);
    const plans = planTopology({
      dir,
      executives,
      host,
      basePort,
      sidecarPort: Number(opts.sidecarPort),
      reflectorPort: Number(opts.reflectorPort),
      heartbeatIntervalMs: Number(opts.heartbeatInterval),
      snapshotIntervalMs: Number(opts.snapshotInterval),
      secrets,
    });
    const group = new ChildGroup(plans, `${dir}/logs`);
    const stopped = untilSignal();
    await group.start();
    const healthy = await Promise.race([
      group.waitHealthy(Number(opts.readyTimeout)),
      stopped.then(() => false),
    ]);
    console.log(renderStatus(group.states()));
    if (!healthy) {
      console.error(`Error: not every component became healthy; see the logs in ${dir}/logs`);
      await group.stop();
      return 1;
    }
    console.log(`
ctl is up. Data and logs: ${dir}
Admin token: ${secrets.adminToken}

Try (from the checkout; see the README's walkthrough):
  export CTL_ADMIN_TOKEN=$(cat ${dir}/admin-token) CTL_EXECUTIVE=${plans[0].address}
  ./ctl family create demo
  ./ctl table create demo flags --field name:string --field enabled:integer --key name
  ./ctl writer register demo-writer --secret demo-secret-1
  echo '{"table":"flags","values":{"name":"dark-mode","enabled":1}}' |
    ./ctl mutate demo --writer demo-writer --secret demo-secret-1
  ./ctl query --ldb ${dir}/ldb/ldb.db "SELECT * FROM demo___flags"
  ./ctl cluster status

Ctrl-C stops everything.`);
    const signal = await stopped;
    console.log(`Stopping on ${signal}…`);
    await group.stop();
    console.log(renderStatus(group.states()));
    return 0;
  },
};

async function ensure(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}
