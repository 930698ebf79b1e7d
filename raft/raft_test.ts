import assert from "node:assert/strict";
import type { Config } from "./config.ts";
import { ProposalDropped, RaftError, RaftInvariantError } from "./errors.ts";
import { seededRandom } from "./random.ts";
import { mayPrecedePersistence, RawNode } from "./raw_node.ts";
import { MemoryStorage } from "./storage.ts";
import type { Message } from "./types.ts";

function config(id: string, storage: MemoryStorage, over: Partial<Config> = {}): Config {
  return {
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    storage,
    maxSizePerMsgBytes: 1 << 20,
    maxInflightMsgs: 16,
    preVote: false,
    checkQuorum: false,
    readOnly: "safe",
    random: seededRandom(1),
    ...over,
  };
}

function node(id: string, voters: string[], over: Partial<Config> = {}) {
  const storage = new MemoryStorage();
  RawNode.bootstrap(storage, voters);
  return { storage, raw: new RawNode(config(id, storage, over)) };
}

function persist(n: { storage: MemoryStorage; raw: RawNode }) {
  const rd = n.raw.ready();
  if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
  n.storage.append(rd.entries);
  if (rd.hardState) n.storage.setHardState(rd.hardState);
  n.raw.advance(rd);
  return rd;
}

Deno.test("config: invalid settings are refused with a typed error naming the setting", () => {
  const s = new MemoryStorage();
  const bad = (over: Partial<Config>) => () => new RawNode(config("a", s, over));
  const code = (e: unknown) => e instanceof RaftError && e.code === "InvalidConfig";
  assert.throws(bad({ electionTicks: 1, heartbeatTicks: 1 }), code);
  assert.throws(bad({ maxInflightMsgs: 0 }), code);
  assert.throws(bad({ readOnly: "lease", checkQuorum: false }), code);
  assert.throws(bad({ id: "" }), code);
});

Deno.test("a single voter elects itself and commits once its own write is durable", () => {
  const n = node("a", ["a"]);
  n.raw.campaign();
  const rd1 = n.raw.ready();
  assert.equal(rd1.softState?.role, "leader");
  assert.deepEqual(rd1.hardState, { term: 2, vote: "a", commit: 1 });
  assert.equal(rd1.entries.length, 1, "the leader's empty entry");
  assert.deepEqual(rd1.committedEntries, [], "not committed before it is durable");
  assert.equal(rd1.mustSync, true);
  n.storage.append(rd1.entries);
  n.storage.setHardState(rd1.hardState!);
  n.raw.advance(rd1);
  const rd2 = n.raw.ready();
  assert.deepEqual(rd2.committedEntries.map((e) => e.index), [2]);
  assert.equal(rd2.mustSync, false, "a commit-only change needs no fsync");
  n.raw.advance(rd2);
  const i = n.raw.propose(new TextEncoder().encode("x"));
  persist(n);
  const rd4 = persist(n);
  assert.deepEqual(rd4.committedEntries.map((e) => e.index), [i]);
  assert.equal(n.raw.status().applied, i);
});

Deno.test("proposals on a follower are dropped with a typed error", () => {
  const n = node("a", ["a", "b", "c"]);
  assert.throws(
    () => n.raw.propose(new Uint8Array([1])),
    (e: unknown) =>
      e instanceof ProposalDropped && e.code === "ProposalDropped" && e.reason === "NotLeader",
  );
});

Deno.test("the uncommitted-bytes limit drops proposals until entries commit", () => {
  const n = node("a", ["a", "b", "c"], { maxUncommittedEntriesBytes: 250 });
  n.raw.campaign();
  n.raw.step({ type: "MsgVoteResp", from: "b", to: "a", term: 2 });
  assert.equal(n.raw.status().role, "leader");
  n.raw.propose(new Uint8Array(100));
  n.raw.propose(new Uint8Array(100));
  assert.throws(
    () => n.raw.propose(new Uint8Array(100)),
    (e: unknown) => e instanceof ProposalDropped && e.reason === "UncommittedLimit",
  );
});

Deno.test("persistence contract: votes wait for persistence; leader MsgApp may go first", () => {
  const n = node("a", ["a", "b", "c"]);
  n.raw.campaign();
  const rd = n.raw.ready();
  assert.deepEqual(rd.messages, []);
  assert.deepEqual(rd.messagesAfterPersist.map((m) => m.type), ["MsgVote", "MsgVote"]);
  n.storage.append(rd.entries);
  n.storage.setHardState(rd.hardState!);
  n.raw.advance(rd);
  n.raw.step({ type: "MsgVoteResp", from: "b", to: "a", term: 2 });
  const rd2 = n.raw.ready();
  assert.equal(rd2.softState?.role, "leader");
  assert.deepEqual(rd2.messages.map((m) => `${m.type}>${m.to}`), ["MsgApp>b", "MsgApp>c"]);
  assert.deepEqual(rd2.messagesAfterPersist, []);
  const m = (type: Message["type"], term: number): Message => ({ type, from: "a", to: "b", term });
  assert.equal(mayPrecedePersistence(m("MsgApp", 3), 2), false, "term not durable yet");
  assert.equal(mayPrecedePersistence(m("MsgAppResp", 2), 2), false);
  assert.equal(mayPrecedePersistence(m("MsgVoteResp", 2), 2), false);
  assert.equal(mayPrecedePersistence(m("MsgHeartbeat", 2), 2), true);
});

Deno.test("a follower acknowledges entries only in messagesAfterPersist", () => {
  const n = node("b", ["a", "b", "c"]);
  n.raw.step({
    type: "MsgApp",
    from: "a",
    to: "b",
    term: 2,
    index: 1,
    logTerm: 1,
    entries: [{ index: 2, term: 2, type: "normal", data: new Uint8Array() }],
    commit: 1,
  });
  const rd = n.raw.ready();
  assert.deepEqual(rd.messages, []);
  assert.deepEqual(rd.messagesAfterPersist.map((m) => [m.type, m.index, m.reject ?? false]), [[
    "MsgAppResp",
    2,
    false,
  ]]);
  assert.equal(n.raw.status().leader, "a");
});

Deno.test("§5.3 a follower rejects a mismatching MsgApp with a conflict hint", () => {
  const n = node("b", ["a", "b", "c"]);
  n.raw.step({
    type: "MsgApp",
    from: "a",
    to: "b",
    term: 3,
    index: 5,
    logTerm: 3,
    entries: [],
    commit: 1,
  });
  const resp = n.raw.ready().messagesAfterPersist[0];
  assert.equal(resp.reject, true);
  assert.equal(resp.index, 5);
  assert.equal(resp.rejectHint, 1);
  assert.equal(resp.logTermHint, 1);
});

Deno.test("§5.1 a node steps down on a higher term and ignores stale terms", () => {
  const n = node("a", ["a", "b", "c"]);
  n.raw.campaign();
  n.raw.step({ type: "MsgVoteResp", from: "b", to: "a", term: 2 });
  assert.equal(n.raw.status().role, "leader");
  n.raw.step({ type: "MsgHeartbeat", from: "c", to: "a", term: 1, commit: 0 });
  assert.equal(n.raw.status().role, "leader");
  n.raw.step({ type: "MsgHeartbeat", from: "c", to: "a", term: 5, commit: 0 });
  assert.equal(n.raw.status().role, "follower");
  assert.equal(n.raw.status().term, 5);
  assert.equal(n.raw.status().leader, "c");
});

Deno.test("§5.2 one vote per term: a second candidate of the same term is refused", () => {
  const n = node("c", ["a", "b", "c"]);
  n.raw.step({ type: "MsgVote", from: "a", to: "c", term: 2, index: 1, logTerm: 1 });
  n.raw.step({ type: "MsgVote", from: "b", to: "c", term: 2, index: 1, logTerm: 1 });
  const rd = n.raw.ready();
  assert.deepEqual(rd.messagesAfterPersist.map((m) => [m.to, m.reject ?? false]), [["a", false], [
    "b",
    true,
  ]]);
  assert.deepEqual(rd.hardState, { term: 2, vote: "a", commit: 1 });
});

Deno.test("Ready alternation is enforced: ready() twice without advance() is a bug", () => {
  const n = node("a", ["a"]);
  n.raw.campaign();
  n.raw.ready();
  assert.throws(() => n.raw.ready(), RaftInvariantError);
});

Deno.test("a restarted node keeps its term and vote, and the election timer is randomized", () => {
  const n = node("c", ["a", "b", "c"]);
  n.raw.step({ type: "MsgVote", from: "a", to: "c", term: 7, index: 1, logTerm: 1 });
  persist(n);
  const again = new RawNode(config("c", n.storage, { random: seededRandom(99) }));
  assert.equal(again.status().term, 7);
  assert.equal(again.status().vote, "a");
  const timeouts = new Set<number>();
  for (let seed = 0; seed < 20; seed++) {
    const r = new RawNode(config("c", n.storage, { random: seededRandom(seed) }));
    timeouts.add(r.raft.randomizedElectionTimeout);
    assert.ok(r.raft.randomizedElectionTimeout >= 10 && r.raft.randomizedElectionTimeout < 20);
  }
  assert.ok(timeouts.size > 3, "timeouts vary with the seed");
});

Deno.test("status reports progress per member on the leader", () => {
  const n = node("a", ["a", "b", "c"]);
  n.raw.campaign();
  n.raw.step({ type: "MsgVoteResp", from: "b", to: "a", term: 2 });
  const s = n.raw.status();
  assert.deepEqual(Object.keys(s.progress).sort(), ["a", "b", "c"]);
  assert.equal(s.progress["b"].state, "probe");
  assert.equal(s.leader, "a");
});
