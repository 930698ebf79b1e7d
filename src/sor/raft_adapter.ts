/**
 * Adapts a `SorStateMachine` to the Raft node's `StateMachine` interface, and reports each
 * applied batch so the executive can wake ledger long-polls and streams.
 */
import type { StateMachine, StateMachineEntry } from "../raftnode/state_machine.ts";
import type { ApplyResult } from "./commands.ts";
import type { SorStateMachine } from "./state_machine.ts";

/** Wraps `sor` for the Raft node; `onApplied(lastSeq)` runs after every applied batch. */
export function sorRaftStateMachine(
  sor: SorStateMachine,
  onApplied: (lastSeq: number) => void = () => {},
): StateMachine {
  return {
    apply(entries: readonly StateMachineEntry[]): (ApplyResult | null)[] {
      const results = sor.applyEntries(entries);
      onApplied(sor.lastSeq());
      return results;
    },
    speculate(entry: StateMachineEntry): void {
      sor.speculate(entry.index, entry.term, entry.local);
    },
    abandonSpeculation: () => sor.abandonSpeculation(),
    snapshot: () => sor.snapshot(),
    snapshotToFile: (path) => sor.snapshotToFile(path),
    async restore(data: Uint8Array, index: number): Promise<void> {
      await sor.restore(data, index);
      onApplied(sor.lastSeq());
    },
    appliedIndex: () => sor.appliedIndex(),
  };
}
