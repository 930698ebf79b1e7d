/**
 * A replicated executive as one process: the Raft node hosting the SoR, and one HTTP handler
 * serving Raft peer traffic under `/raft/` and the API everywhere else.
 */
import type { NodeId } from "../../raft/types.ts";
import { RaftNode, type RaftNodeOptions } from "../raftnode/raft_node.ts";
import { sorRaftStateMachine } from "../sor/raft_adapter.ts";
import { SorStateMachine } from "../sor/state_machine.ts";
import { createExecutiveApp, type ExecutiveAppOptions } from "./app.ts";
import type { ExecutiveDeps } from "./deps.ts";
import { LdbSnapshotter } from "./ldb_snapshot.ts";
import { ExecutiveMetrics } from "./metrics.ts";
import { createRaftExecutiveDeps } from "./raft_deps.ts";
import { SeqWatch } from "./seq_watch.ts";

/** How to start a replicated executive. */
export interface ExecutiveServerOptions {
  /** `raft/` holds the Raft log and snapshots, `sor.db` the system of record. */
  dataDir: string;
  id?: NodeId;
  peers?: Record<NodeId, string>;
  join?: boolean;
  clusterSecret: string;
  adminToken: string;
  destructiveChanges: boolean;
  raft?: Partial<
    Pick<
      RaftNodeOptions,
      | "tickMs"
      | "electionTicks"
      | "commitHoldMs"
      | "followerFsyncWaitMs"
      | "snapshotEntries"
      | "compactKeepEntries"
      | "proposalTimeoutMs"
      | "peerListen"
    >
  >;
  app?: ExecutiveAppOptions;
  /** Called when the Raft loop cannot go on (a disk error): the process should exit. */
  onFatal?: (err: Error) => void;
  /** Ledger entries kept for reflectors; older ones are pruned (0: keep all). */
  ledgerRetentionEntries?: number;
}

/** How often the ledger retention window is enforced. */
const PRUNE_INTERVAL_MS = 1000;

/** A running executive: its node, SoR and request handler. */
export interface ExecutiveServer {
  node: RaftNode;
  sor: SorStateMachine;
  deps: ExecutiveDeps;
  metrics: ExecutiveMetrics;
  handler: (req: Request) => Response | Promise<Response>;
  stop(): Promise<void>;
}

/** Opens the SoR, starts the Raft node over it and builds the handler. */
export async function startExecutive(o: ExecutiveServerOptions): Promise<ExecutiveServer> {
  await Deno.mkdir(`${o.dataDir}/raft`, { recursive: true });
  const sor = new SorStateMachine(`${o.dataDir}/sor.db`);
  const watch = new SeqWatch(sor.lastSeq());
  const metrics = new ExecutiveMetrics();
  let node: RaftNode;
  try {
    node = await RaftNode.start({
      ...o.raft,
      id: o.id,
      dataDir: `${o.dataDir}/raft`,
      peers: o.peers,
      join: o.join,
      secret: o.clusterSecret,
      stateMachine: metrics.wrapStateMachine(sorRaftStateMachine(sor, (seq) => watch.notify(seq))),
      wrapLogStore: metrics.wrapLogStore,
      onFatal: o.onFatal,
    });
  } catch (e) {
    sor.close();
    throw e;
  }
  metrics.attach({
    raftStatus: () => node.status(),
    lastSeq: () => sor.lastSeq(),
    speculations: () => sor.speculations,
  });
  const raftDeps = createRaftExecutiveDeps({
    node,
    sor,
    watch,
    adminToken: o.adminToken,
    destructiveChanges: o.destructiveChanges,
  });
  const deps: ExecutiveDeps = {
    ...raftDeps,
    propose: async (cmd, mutation) => {
      try {
        const result = await raftDeps.propose(cmd, mutation);
        metrics.proposal(result.ok ? "ok" : "rejected");
        return result;
      } catch (e) {
        metrics.proposal("failed");
        throw e;
      }
    },
  };
  const app = createExecutiveApp(deps, o.app);
  const snapshots = new LdbSnapshotter(
    `${o.dataDir}/sor.db`,
    `${o.dataDir}/ldb-snapshots`,
    () => sor.lastSeq(),
  );
  const retention = o.ledgerRetentionEntries ?? 0;
  const pruner = retention > 0
    ? setInterval(() => sor.pruneLedger(retention), PRUNE_INTERVAL_MS)
    : undefined;
  return {
    node,
    sor,
    deps,
    metrics,
    handler: (req) => {
      const path = new URL(req.url).pathname;
      if (path.startsWith("/raft/")) return node.handler(req);
      if (path === "/metrics" && req.method === "GET") return metrics.render();
      if (path === "/v1/snapshot" && req.method === "GET") return snapshots.response();
      return app.fetch(req);
    },
    stop: async () => {
      clearInterval(pruner);
      await node.stop();
      watch.close();
      sor.close();
    },
  };
}
