/**
 * Membership changes: the ConfChange vocabulary, its encoding in "conf" log entries, and the
 * pure function that turns a configuration plus a change into the next configuration.
 *
 * Changes take effect when the entry is applied (as in etcd), not when it is appended. A change
 * of more than one voter must go through a joint configuration (Cold,new) and then leave it; a
 * simple change may touch at most one voter, which keeps any two successive majorities
 * overlapping.
 */

import { RaftError } from "./errors.ts";
import type { ConfState, NodeId } from "./types.ts";

export type ConfChangeType = "addVoter" | "addLearner" | "removeNode";

/** One change: add (or promote) a voter, add (or demote to) a learner, or remove a member. */
export interface ConfChangeSingle {
  type: ConfChangeType;
  nodeId: NodeId;
}

/**
 * How to move to the new configuration. "auto": simple when possible (one voter changed), else
 * joint with automatic leave. "implicit": always joint, left automatically. "explicit": always
 * joint, left by proposing an empty ConfChange.
 */
export type ConfChangeTransition = "auto" | "implicit" | "explicit";

/** A membership change. No changes at all means: leave the current joint configuration. */
export interface ConfChange {
  changes: ConfChangeSingle[];
  transition?: ConfChangeTransition;
  /** Opaque to the core, e.g. the address of a new member. */
  context?: string;
}

const changeTypes: ReadonlySet<string> = new Set(["addVoter", "addLearner", "removeNode"]);
const transitions: ReadonlySet<string> = new Set(["auto", "implicit", "explicit"]);

/** Encodes a ConfChange as the data of a "conf" entry (UTF-8 JSON). */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(cc));
}

/** Decodes the data of a "conf" entry. Throws RaftError "ConfChangeInvalid" on bad input. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(data));
  } catch (e) {
    throw new RaftError("ConfChangeInvalid", `Cannot decode conf change: ${(e as Error).message}`);
  }
  return validateConfChange(raw);
}

/** Checks the shape of a ConfChange from an untrusted source. */
export function validateConfChange(raw: unknown): ConfChange {
  const bad = (why: string) => new RaftError("ConfChangeInvalid", `Invalid conf change: ${why}`);
  if (typeof raw !== "object" || raw === null) throw bad("not an object");
  const o = raw as Record<string, unknown>;
  if (!Array.isArray(o.changes)) throw bad("changes is not an array");
  const changes: ConfChangeSingle[] = o.changes.map((c: unknown) => {
    const s = c as Record<string, unknown>;
    if (typeof s !== "object" || s === null || !changeTypes.has(s.type as string)) {
      throw bad(`unknown change ${JSON.stringify(c)}`);
    }
    if (typeof s.nodeId !== "string" || s.nodeId === "") throw bad("nodeId must be a string");
    return { type: s.type as ConfChangeType, nodeId: s.nodeId };
  });
  if (o.transition !== undefined && !transitions.has(o.transition as string)) {
    throw bad(`unknown transition ${JSON.stringify(o.transition)}`);
  }
  if (o.context !== undefined && typeof o.context !== "string") {
    throw bad("context must be a string");
  }
  return {
    changes,
    transition: o.transition as ConfChangeTransition | undefined,
    context: o.context as string | undefined,
  };
}

/** True if the change leaves a joint configuration. */
export function isLeaveJoint(cc: ConfChange): boolean {
  return cc.changes.length === 0;
}

/** Whether the change enters a joint configuration, and whether it is left automatically. */
export function entersJoint(cc: ConfChange): { joint: boolean; autoLeave: boolean } {
  const transition = cc.transition ?? "auto";
  if (transition !== "auto" || cc.changes.length > 1) {
    return { joint: true, autoLeave: transition !== "explicit" };
  }
  return { joint: false, autoLeave: false };
}

/** The membership as sets: incoming voters, outgoing voters (joint only), learners. */
export interface MembershipConfig {
  voters: Set<NodeId>;
  votersOutgoing: Set<NodeId>;
  learners: Set<NodeId>;
  /** Voters of the outgoing config to become learners when the joint config is left. */
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

export function isJoint(c: MembershipConfig): boolean {
  return c.votersOutgoing.size > 0;
}

export function configFromConfState(cs: ConfState): MembershipConfig {
  const c: MembershipConfig = {
    voters: new Set(cs.voters),
    votersOutgoing: new Set(cs.votersOutgoing),
    learners: new Set(cs.learners),
    learnersNext: new Set(cs.learnersNext),
    autoLeave: cs.autoLeave,
  };
  checkConfig(c);
  return c;
}

export function confStateFromConfig(c: MembershipConfig): ConfState {
  const sorted = (s: Set<NodeId>) => [...s].sort();
  return {
    voters: sorted(c.voters),
    learners: sorted(c.learners),
    votersOutgoing: sorted(c.votersOutgoing),
    learnersNext: sorted(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

/** Every member of the configuration, each once. */
export function members(c: MembershipConfig): Set<NodeId> {
  return new Set([...c.voters, ...c.votersOutgoing, ...c.learners, ...c.learnersNext]);
}

function invalid(why: string): RaftError {
  return new RaftError("ConfChangeInvalid", `Invalid configuration change: ${why}`);
}

/** Throws ConfChangeInvalid unless the configuration is well formed. */
export function checkConfig(c: MembershipConfig): void {
  for (const id of c.learners) {
    if (c.voters.has(id) || c.votersOutgoing.has(id)) {
      throw invalid(`${id} is both learner and voter`);
    }
  }
  for (const id of c.learnersNext) {
    if (!c.votersOutgoing.has(id)) {
      throw invalid(`${id} is in learnersNext but not an outgoing voter`);
    }
    if (c.learners.has(id)) throw invalid(`${id} is in learnersNext and learners`);
  }
  if (!isJoint(c)) {
    if (c.learnersNext.size > 0) throw invalid("learnersNext outside a joint configuration");
    if (c.autoLeave) throw invalid("autoLeave outside a joint configuration");
  }
}

function copy(c: MembershipConfig): MembershipConfig {
  return {
    voters: new Set(c.voters),
    votersOutgoing: new Set(c.votersOutgoing),
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

function applyChanges(c: MembershipConfig, changes: ConfChangeSingle[]): void {
  for (const ch of changes) {
    const id = ch.nodeId;
    switch (ch.type) {
      case "addVoter":
        c.learners.delete(id);
        c.learnersNext.delete(id);
        c.voters.add(id);
        break;
      case "addLearner":
        // A voter of the outgoing config stays a voter until the joint config is left.
        c.voters.delete(id);
        c.learners.delete(id);
        c.learnersNext.delete(id);
        if (c.votersOutgoing.has(id)) c.learnersNext.add(id);
        else c.learners.add(id);
        break;
      case "removeNode":
        c.voters.delete(id);
        c.learners.delete(id);
        c.learnersNext.delete(id);
        break;
    }
  }
  if (c.voters.size === 0) throw invalid("removed all voters");
}

function symmetricDifferenceSize(a: Set<NodeId>, b: Set<NodeId>): number {
  let n = 0;
  for (const id of a) if (!b.has(id)) n++;
  for (const id of b) if (!a.has(id)) n++;
  return n;
}

/**
 * The configuration after applying `cc` to `current`. Throws RaftError "ConfChangeInvalid" when
 * the change is not allowed (joint while joint, leave while not joint, more than one voter
 * changed without joint, no voters left).
 */
export function nextConfig(current: MembershipConfig, cc: ConfChange): MembershipConfig {
  const c = copy(current);
  if (isLeaveJoint(cc)) {
    if (!isJoint(c)) throw invalid("cannot leave a joint configuration: not joint");
    for (const id of c.learnersNext) c.learners.add(id);
    c.learnersNext.clear();
    c.votersOutgoing.clear();
    c.autoLeave = false;
    checkConfig(c);
    return c;
  }
  if (isJoint(c)) throw invalid("configuration is already joint; leave it first");
  const { joint, autoLeave } = entersJoint(cc);
  if (joint) {
    if (c.voters.size === 0) throw invalid("cannot make a zero-voter configuration joint");
    c.votersOutgoing = new Set(c.voters);
    applyChanges(c, cc.changes);
    c.autoLeave = autoLeave;
  } else {
    applyChanges(c, cc.changes);
    if (symmetricDifferenceSize(current.voters, c.voters) > 1) {
      throw invalid("more than one voter changed without a joint configuration");
    }
  }
  checkConfig(c);
  return c;
}
