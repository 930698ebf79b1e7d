/**
 * The durable Raft node: the public surface of src/raftnode/ (see DESIGN.md).
 *
 * ```ts
 * const node = await RaftNode.start({ id, dataDir, stateMachine, secret, peers });
 * // mount node.handler under /raft/ on the server that serves peers[id]
 * const result = await node.propose(bytes);
 * ```
 */

export {
  type MemberStatus,
  RaftNode,
  type RaftNodeOptions,
  type RaftNodeStatus,
} from "./raft_node.ts";
export type { StateMachine, StateMachineEntry } from "./state_machine.ts";
export { NotLeaderError, RaftNodeError, type RaftNodeErrorCode } from "./errors.ts";
export type { Role } from "./core_port.ts";
export { createRaftHandler, type RaftHandlerOptions } from "./transport/raft_handler.ts";
export { SECRET_HEADER } from "./transport/peer_auth.ts";
export type { DurableState, LogStore } from "./storage/types.ts";
export { StorageError } from "./storage/types.ts";
export { SegmentLog } from "./storage/segment_log.ts";
export { SqliteLog } from "./storage/sqlite_log.ts";
export { MemoryLog } from "./storage/memory_log.ts";
