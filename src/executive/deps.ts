/**
 * What the executive's HTTP layer needs from the node it runs on. The real implementation wraps
 * the Raft node; `local.ts` applies commands directly to a SorStateMachine for tests.
 */
import type { ApplyResult, PreparedMutation, SorCommand } from "../sor/commands.ts";
import type { SorStateMachine } from "../sor/state_machine.ts";

/** The health report behind `GET /status`. */
export interface ExecutiveStatus {
  /** False when this node cannot serve writes soon (no leader known, not caught up): 503. */
  healthy: boolean;
  [detail: string]: unknown;
}

/** Cluster membership changes (admin routes under `/v1/cluster`); each resolves once applied. */
export interface MembershipDeps {
  /** Adds a non-voting member that starts replicating. */
  addLearner(id: string, url: string): Promise<void>;
  /** Makes a caught-up learner a voter. */
  promote(id: string): Promise<void>;
  remove(id: string): Promise<void>;
  transferLeader(id: string): Promise<void>;
}

/** The executive's view of its node. */
export interface ExecutiveDeps {
  /**
   * Proposes a stamped command and resolves with its apply result once committed and applied on
   * this node (the leader). Rejects with a `CtlError` (`no_leader`) when leadership is lost.
   * `mutation`: the request's validated mutations, which the leader's apply reuses while the
   * schemas they were checked against stand.
   */
  propose(cmd: SorCommand, mutation?: PreparedMutation): Promise<ApplyResult>;
  /** Resolves once this node's SoR reflects every write committed before the call (ReadIndex). */
  readBarrier(): Promise<void>;
  /** The local SoR, read side only: the HTTP layer never applies to it. */
  sor: SorStateMachine;
  isLeader(): boolean;
  /** The leader's base URL (`http://host:port`), or null when no leader is known. */
  leaderUrl(): string | null;
  status(): Promise<ExecutiveStatus>;
  /** Resolves when the local ledger reaches `seq`, or after `timeoutMs`, whichever is first. */
  waitForSeq(seq: number, timeoutMs: number): Promise<void>;
  /** The bearer token admin routes require; never empty. */
  adminToken: string;
  /** Whether drop/clear routes are allowed (ctlstore's flag). */
  destructiveChanges: boolean;
  /** The clock stamped into commands, unix ms: read only here, never at apply. */
  now(): number;
  /** Membership changes; absent on a single-node backend (the routes then answer 404). */
  membership?: MembershipDeps;
  /** Used to forward writes to the leader; defaults to the global `fetch`. */
  fetch?: typeof fetch;
}
