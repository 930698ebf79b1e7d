/**
 * `ExecutiveDeps` over a running Raft node: proposals go through Raft, reads of schema, cookies
 * and limits pass a ReadIndex barrier, and the node's failures become `CtlError`s with stable
 * codes (a follower's NOT_LEADER, a timeout, overload).
 */
import { NotLeaderError, RaftNodeError } from "../raftnode/errors.ts";
import type { RaftNode } from "../raftnode/raft_node.ts";
import {
  type ApplyResult,
  encodeCommand,
  PreparedCommand,
  type PreparedMutation,
  type SorCommand,
} from "../sor/commands.ts";
import { CtlError } from "../sor/errors.ts";
import type { SorStateMachine } from "../sor/state_machine.ts";
import type { ExecutiveDeps, ExecutiveStatus, MembershipDeps } from "./deps.ts";
import type { SeqWatch } from "./seq_watch.ts";

/** The part of `RaftNode` the executive uses (tests pass a fake). */
export type RaftNodeLike = Pick<
  RaftNode,
  | "propose"
  | "readIndex"
  | "status"
  | "peerUrls"
  | "isLeader"
  | "leaderUrl"
  | "addLearner"
  | "promote"
  | "remove"
  | "transferLeader"
>;

/** What the executive process builds before the deps. */
export interface RaftDepsOptions {
  node: RaftNodeLike;
  sor: SorStateMachine;
  /** Notified by `sorRaftStateMachine(sor, (seq) => watch.notify(seq))`. */
  watch: SeqWatch;
  adminToken: string;
  destructiveChanges: boolean;
  now?: () => number;
}

/** Maps a Raft node failure to a CtlError; anything else is rethrown as is (a bug). */
export function raftErrorToCtl(e: unknown, action: string): never {
  if (e instanceof NotLeaderError) {
    throw new CtlError("no_leader", `Cannot ${action}: this executive is not the leader`);
  }
  if (e instanceof RaftNodeError) {
    switch (e.code) {
      case "NOT_LEADER":
      case "PROPOSAL_DROPPED":
      case "STOPPED":
        throw new CtlError("no_leader", `Cannot ${action}: ${e.message}`);
      case "TIMEOUT":
        // The entry may still commit: a retry with the same Idempotency-Key is safe.
        throw new CtlError("timeout", `Cannot ${action}: ${e.message}`);
      case "OVERLOADED":
        throw new CtlError("overloaded", `Cannot ${action}: ${e.message}`);
      case "TOO_LARGE":
        throw new CtlError("body_too_large", `Cannot ${action}: ${e.message}`);
      case "BAD_MEMBERSHIP":
      case "BAD_START":
        throw new CtlError("bad_request", `Cannot ${action}: ${e.message}`);
    }
  }
  throw e;
}

async function mapped<T>(action: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    raftErrorToCtl(e, action);
  }
}

/** Builds the deps of a Raft-backed executive. */
export function createRaftExecutiveDeps(o: RaftDepsOptions): ExecutiveDeps {
  const { node, sor, watch } = o;
  const membership: MembershipDeps = {
    addLearner: (id, url) => mapped(`add member ${id}`, () => node.addLearner(id, url)),
    promote: (id) => mapped(`promote member ${id}`, () => node.promote(id)),
    remove: (id) => mapped(`remove member ${id}`, () => node.remove(id)),
    transferLeader: (id) => mapped(`transfer leadership to ${id}`, () => node.transferLeader(id)),
  };
  return {
    sor,
    adminToken: o.adminToken,
    destructiveChanges: o.destructiveChanges,
    membership,
    now: o.now ?? Date.now,
    propose: (cmd: SorCommand, mutation?: PreparedMutation) =>
      mapped(
        `apply ${cmd.type}`,
        async () =>
          (await node.propose(
            encodeCommand(cmd),
            new PreparedCommand(cmd, mutation),
          )) as ApplyResult,
      ),
    readBarrier: () => mapped("read consistently", () => node.readIndex()),
    isLeader: () => node.isLeader(),
    leaderUrl: () => node.leaderUrl(),
    status: (): Promise<ExecutiveStatus> => {
      const s = node.status();
      return Promise.resolve({
        healthy: s.leader !== null,
        ...s,
        leaderUrl: s.leader === null ? null : node.peerUrls()[s.leader] ?? null,
        lastSeq: sor.lastSeq(),
        sorAppliedIndex: sor.appliedIndex(),
      });
    },
    waitForSeq: (seq, timeoutMs) => watch.wait(seq, timeoutMs),
  };
}
