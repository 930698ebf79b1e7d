/**
 * A single-node, in-process executive backend: commands apply straight to a SorStateMachine,
 * with no Raft. For tests (ours and other components') and for trying the HTTP API.
 */
import {
  type ApplyResult,
  encodeCommand,
  PreparedCommand,
  type PreparedMutation,
  type SorCommand,
} from "../sor/commands.ts";
import { SorStateMachine } from "../sor/state_machine.ts";
import type { ExecutiveDeps, ExecutiveStatus } from "./deps.ts";
import { SeqWatch } from "./seq_watch.ts";

/** Options of a local executive. */
export interface LocalExecutiveOptions {
  /** The SoR file; a fresh temporary directory when omitted (removed by `close`). */
  path?: string;
  adminToken?: string;
  destructiveChanges?: boolean;
  /** The leader clock; `Date.now` by default. Tests pass a controllable one. */
  now?: () => number;
}

/** Default admin token of local executives (tests). */
export const LOCAL_ADMIN_TOKEN = "local-admin-token";

/** `ExecutiveDeps` over one in-process SoR: always the leader, reads always current. */
export class LocalExecutive implements ExecutiveDeps {
  readonly sor: SorStateMachine;
  readonly adminToken: string;
  destructiveChanges: boolean;
  readonly #watch: SeqWatch;
  readonly #now: () => number;
  readonly #tempDir: string | null;

  constructor(options: LocalExecutiveOptions = {}) {
    this.#tempDir = options.path ? null : Deno.makeTempDirSync({ prefix: "ctl-local-exec-" });
    this.sor = new SorStateMachine(options.path ?? `${this.#tempDir}/sor.db`);
    this.adminToken = options.adminToken ?? LOCAL_ADMIN_TOKEN;
    this.destructiveChanges = options.destructiveChanges ?? true;
    this.#now = options.now ?? Date.now;
    this.#watch = new SeqWatch(this.sor.lastSeq());
  }

  propose(cmd: SorCommand, mutation?: PreparedMutation): Promise<ApplyResult> {
    // As a Raft leader applies its own proposal: the bytes, with the command beside them.
    const [result] = this.sor.applyEntries([{
      index: this.sor.appliedIndex() + 1,
      kind: "app",
      data: encodeCommand(cmd),
      local: new PreparedCommand(cmd, mutation),
    }]) as [ApplyResult];
    this.#watch.notify(this.sor.lastSeq());
    return Promise.resolve(result);
  }

  readBarrier(): Promise<void> {
    return Promise.resolve();
  }

  isLeader(): boolean {
    return true;
  }

  leaderUrl(): string | null {
    return null;
  }

  status(): Promise<ExecutiveStatus> {
    return Promise.resolve({
      healthy: true,
      role: "leader",
      mode: "local",
      appliedIndex: this.sor.appliedIndex(),
      lastSeq: this.sor.lastSeq(),
    });
  }

  waitForSeq(seq: number, timeoutMs: number): Promise<void> {
    return this.#watch.wait(seq, timeoutMs);
  }

  now(): number {
    return this.#now();
  }

  /** Wakes waiters, closes the SoR and removes its temporary directory, if any. */
  close(): void {
    this.#watch.close();
    this.sor.close();
    if (this.#tempDir) Deno.removeSync(this.#tempDir, { recursive: true });
  }
}
