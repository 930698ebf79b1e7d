/**
 * The leader's bookkeeping for the whole membership: the configuration, one Progress per member,
 * and the votes of the current election.
 */

import { configFromConfState, members, type MembershipConfig } from "./confchange.ts";
import { Progress } from "./progress.ts";
import { jointCommitted, jointVoteResult, type VoteResult } from "./quorum.ts";
import type { ConfState, NodeId } from "./types.ts";

export class ProgressTracker {
  config: MembershipConfig;
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  constructor(
    cs: ConfState,
    readonly maxInflight: number,
    readonly maxInflightBytes: number,
  ) {
    this.config = configFromConfState(cs);
  }

  /** Replaces the configuration, keeping the progress of members that remain. */
  setConfig(config: MembershipConfig, nextIndex: number): void {
    this.config = config;
    const next = new Map<NodeId, Progress>();
    for (const id of members(config)) {
      let pr = this.progress.get(id);
      // learnersNext are still outgoing voters: they become learners when the joint config is left.
      const learner = config.learners.has(id);
      if (!pr) {
        pr = new Progress(nextIndex, learner, this.maxInflight, this.maxInflightBytes);
        // A new member counts as active so that CheckQuorum does not depose the leader before
        // the newcomer has had a chance to answer.
        pr.recentActive = true;
      }
      pr.isLearner = learner;
      next.set(id, pr);
    }
    this.progress = next;
  }

  isVoter(id: NodeId): boolean {
    return this.config.voters.has(id) || this.config.votersOutgoing.has(id);
  }

  /** True when the member is the only voter (a one-node cluster commits alone). */
  isSingleton(id: NodeId): boolean {
    return this.config.voters.size === 1 && this.config.voters.has(id) &&
      this.config.votersOutgoing.size === 0;
  }

  /** The highest index acknowledged by a quorum of voters. */
  committed(): number {
    return jointCommitted(
      { incoming: this.config.voters, outgoing: this.config.votersOutgoing },
      (id) => this.progress.get(id)?.match ?? 0,
    );
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  voteResult(): VoteResult {
    return jointVoteResult(
      { incoming: this.config.voters, outgoing: this.config.votersOutgoing },
      this.votes,
    );
  }

  /** Counts granted and rejected votes (for status and logs). */
  tallyVotes(): { granted: number; rejected: number } {
    let granted = 0;
    let rejected = 0;
    for (const v of this.votes.values()) v ? granted++ : rejected++;
    return { granted, rejected };
  }

  /** True if a quorum of voters was recently active (the leader itself counts). */
  quorumActive(self: NodeId): boolean {
    const active = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      active.set(id, id === self || pr.recentActive);
    }
    return this.voteResultOf(active) === "won";
  }

  /** The election outcome for an arbitrary set of acknowledgements. */
  voteResultOf(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    return jointVoteResult(
      { incoming: this.config.voters, outgoing: this.config.votersOutgoing },
      votes,
    );
  }

  /** Voters, sorted, each once (incoming and outgoing). */
  voterIds(): NodeId[] {
    return [...new Set([...this.config.voters, ...this.config.votersOutgoing])].sort();
  }
}
