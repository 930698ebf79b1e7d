/**
 * Quorum maths: the committed index and election outcome of a majority configuration, and of a
 * joint configuration (both majorities must agree).
 */

import type { NodeId } from "./types.ts";

/** Outcome of a vote count. */
export type VoteResult = "won" | "lost" | "pending";

/**
 * The highest index acknowledged by a majority of `voters`, given each voter's acknowledged
 * index (missing = 0). An empty configuration returns Infinity so that it never limits a joint
 * configuration.
 */
export function majorityCommitted(voters: Iterable<NodeId>, acked: (id: NodeId) => number): number {
  const indexes: number[] = [];
  for (const id of voters) indexes.push(acked(id));
  if (indexes.length === 0) return Infinity;
  indexes.sort((a, b) => b - a);
  return indexes[Math.floor(indexes.length / 2)];
}

/** The outcome of an election in a majority configuration. An empty one is won. */
export function majorityVoteResult(
  voters: Iterable<NodeId>,
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  let total = 0;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    total++;
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  if (total === 0) return "won";
  const q = Math.floor(total / 2) + 1;
  if (granted >= q) return "won";
  if (granted + missing >= q) return "pending";
  return "lost";
}

/** A voter configuration: `incoming`, and `outgoing` which is non-empty only when joint. */
export interface JointVoters {
  incoming: ReadonlySet<NodeId>;
  outgoing: ReadonlySet<NodeId>;
}

/** Committed index of a joint configuration: the lower of the two majorities. */
export function jointCommitted(voters: JointVoters, acked: (id: NodeId) => number): number {
  const c = Math.min(
    majorityCommitted(voters.incoming, acked),
    majorityCommitted(voters.outgoing, acked),
  );
  return c === Infinity ? 0 : c;
}

/** Election outcome in a joint configuration: won in both, lost in either, else pending. */
export function jointVoteResult(
  voters: JointVoters,
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const a = majorityVoteResult(voters.incoming, votes);
  const b = majorityVoteResult(voters.outgoing, votes);
  if (a === b) return a;
  if (a === "lost" || b === "lost") return "lost";
  return "pending";
}
