/**
 * The public surface of the Raft core: a pure, deterministic Raft modelled on etcd-io/raft.
 *
 * A driver (outside raft/) owns disk, network and time: it calls `tick()` on a timer, `step()`
 * with messages from peers, `propose()` for writes, then drains `ready()`, does what the Ready
 * says in the order given by raft/DESIGN.md, and calls `advance()`.
 */

export type * from "./types.ts";
export { type BootstrapTarget, mayPrecedePersistence, RawNode } from "./raw_node.ts";
export type {
  Config,
  ProgressStatus,
  ReadState,
  Ready,
  Role,
  SoftState,
  Status,
} from "./config.ts";
export { validateConfig } from "./config.ts";
export { emptyConfState, entrySizeBytes, MemoryStorage, type Storage } from "./storage.ts";
export {
  type ConfChange,
  type ConfChangeSingle,
  type ConfChangeTransition,
  type ConfChangeType,
  decodeConfChange,
  encodeConfChange,
} from "./confchange.ts";
export {
  CompactedError,
  ProposalDropped,
  RaftError,
  type RaftErrorCode,
  RaftInvariantError,
  UnavailableError,
} from "./errors.ts";
export { seededRandom } from "./random.ts";
export { transferContext } from "./raft.ts";
