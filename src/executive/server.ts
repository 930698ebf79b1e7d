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
      "tickMs" | "electionTicks" | "snapshotEntries" | "compactKeepEntries" | "proposalTimeoutMs"
    >
  >;
  app?: ExecutiveAppOptions;
}

/** A running executive: its node, SoR and request handler. */
export interface ExecutiveServer {
  node: RaftNode;
  sor: SorStateMachine;
  deps: ExecutiveDeps;
  handler: (req: Request) => Response | Promise<Response>;
  stop(): Promise<void>;
}

/** Opens the SoR, starts the Raft node over it and builds the handler. */
export async function startExecutive(o: ExecutiveServerOptions): Promise<ExecutiveServer> {
  await Deno.mkdir(`${o.dataDir}/raft`, { recursive: true });
  const sor = new SorStateMachine(`${o.dataDir}/sor.db`);
  const watch = new SeqWatch(sor.lastSeq());
  let node: RaftNode;
  try {
    node = await RaftNode.start({
      ...o.raft,
      id: o.id,
      dataDir: `${o.dataDir}/raft`,
      peers: o.peers,
      join: o.join,
      secret: o.clusterSecret,
      stateMachine: sorRaftStateMachine(sor, (seq) => watch.notify(seq)),
    });
  } catch (e) {
    sor.close();
    throw e;
  }
  const deps = createRaftExecutiveDeps({
    node,
    sor,
    watch,
    adminToken: o.adminToken,
    destructiveChanges: o.destructiveChanges,
  });
  const app = createExecutiveApp(deps, o.app);
  return {
    node,
    sor,
    deps,
    handler: (req) => {
      if (new URL(req.url).pathname.startsWith("/raft/")) return node.handler(req);
      return app.fetch(req);
    },
    stop: async () => {
      await node.stop();
      watch.close();
      sor.close();
    },
  };
}
