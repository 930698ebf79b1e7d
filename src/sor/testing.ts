/**
 * Test helpers for code that drives a `SorStateMachine` without Raft: a temporary SoR file and a
 * feeder that assigns consecutive Raft indexes.
 */
import {
  type ApplyResult,
  encodeCommand,
  PreparedCommand,
  type PreparedMutation,
  prepareMutation,
  type SorCommand,
  type SorCommandBody,
} from "./commands.ts";
import { hashSecret } from "./secrets.ts";
import { type CommittedEntry, SorStateMachine } from "./state_machine.ts";
import { rawMutations } from "./validate.ts";

/** A SoR in a fresh temporary directory, with an index counter. */
export class TestSor {
  readonly dir: string;
  readonly path: string;
  sor: SorStateMachine;
  /** The leader clock stamped into commands; tests move it explicitly. */
  ts = 1_700_000_000_000;

  /** `commitEveryMs`: as the SoR option (default: the SoR's own). */
  constructor(readonly options: { commitEveryMs?: number } = {}) {
    this.dir = Deno.makeTempDirSync({ prefix: "ctl-sor-test-" });
    this.path = `${this.dir}/sor.db`;
    this.sor = new SorStateMachine(this.path, options);
  }

  /** Stamps, encodes and applies a command at the next index. */
  apply(body: SorCommandBody, idempotencyKey?: string): ApplyResult {
    const cmd: SorCommand = { ...body, ts: this.ts, ...(idempotencyKey ? { idempotencyKey } : {}) };
    return this.sor.apply(this.sor.appliedIndex() + 1, encodeCommand(cmd));
  }

  /**
   * The entry a leader would propose for `body`: its bytes, and beside them the command and, for
   * a mutation that passes validation against the current schema, its validated ops (as the
   * executive's mutation route builds them).
   */
  preparedEntry(body: SorCommandBody, index: number): CommittedEntry {
    const cmd: SorCommand = { ...body, ts: this.ts };
    let mutation: PreparedMutation | undefined;
    if (cmd.type === "mutate") {
      try {
        mutation = prepareMutation(
          cmd.family,
          rawMutations(cmd.mutations, cmd.family),
          (t) => this.sor.tableSchema(cmd.family, t),
        );
      } catch {
        // The executive would refuse the request; apply decides alone here.
      }
    }
    return {
      index,
      kind: "app",
      data: encodeCommand(cmd),
      local: new PreparedCommand(cmd, mutation),
    };
  }

  /** Applies and asserts success; returns the seq. */
  ok(body: SorCommandBody, idempotencyKey?: string): number {
    const result = this.apply(body, idempotencyKey);
    if (!result.ok) throw new Error(`${body.type} failed: ${JSON.stringify(result.error)}`);
    return result.seq;
  }

  /** Registers a writer with the given secret. */
  registerWriter(writer: string, secret: string): number {
    return this.ok({ type: "register_writer", writer, ...hashSecret(secret) });
  }

  /** Closes and reopens the SoR file (a process restart). */
  reopen(): void {
    this.sor.close();
    this.sor = new SorStateMachine(this.path, this.options);
  }

  dispose(): void {
    this.sor.close();
    Deno.removeSync(this.dir, { recursive: true });
  }
}
