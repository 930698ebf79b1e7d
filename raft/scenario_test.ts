/**
 * The classic traps, each named after the sentence of the Raft paper (or thesis) it tests.
 */

import assert from "node:assert/strict";
import { ProposalDropped } from "./errors.ts";
import { Harness } from "./sim/harness.ts";

const ids3 = ["n1", "n2", "n3"];
const ids5 = ["n1", "n2", "n3", "n4", "n5"];

Deno.test("§5.2: a candidate that wins votes from a majority becomes leader, and every node knows it", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  assert.deepEqual(h.leaders().map((l) => l.id), ["n1"]);
  for (const id of ids3) assert.equal(h.raw(id).status().leader, "n1");
  const i = h.propose("n1", "x");
  for (const id of ids3) assert.ok(h.appliedData(id).includes("x"), `${id} applied x at ${i}`);
});

Deno.test("§5.2: randomized election timeouts elect a single leader without help", () => {
  const h = new Harness(ids5);
  const leader = h.waitLeader();
  assert.equal(h.leaders().length, 1);
  for (const id of ids5) assert.equal(h.raw(id).status().leader, leader);
});

Deno.test("§5.4.1: a voter denies its vote if its own log is more up-to-date than the candidate's", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  h.isolate("n3");
  h.propose("n1", "a");
  h.heal();
  // n3 lacks "a": n1 and n2 must refuse it even though it asks at a higher term.
  h.crash("n1");
  h.raw("n3").campaign();
  h.stabilize();
  assert.notEqual(h.raw("n3").status().role, "leader");
});

Deno.test("Figure 8: a leader never commits an entry from a previous term by counting replicas", () => {
  // As in the paper: plain elections (no Pre-Vote, no leases), one entry per message.
  const h = new Harness(ids5, { maxSizePerMsgBytes: 1, preVote: false, checkQuorum: false });
  h.campaign("n1");
  // (a) n1 (term 2) replicates "old" to n2 only.
  h.drop = (m) => m.from === "n1" && !["n2"].includes(m.to);
  const oldIndex = h.propose("n1", "old");
  assert.equal(h.raw("n2").status().lastIndex, oldIndex);
  // (b) n1 crashes; n5 wins term 3 with votes from n3, n4, n5 and appends an entry at the same
  // index, which reaches nobody.
  h.crash("n1");
  h.heal();
  h.drop = (m) => m.to === "n2" || m.from === "n2" || (m.from === "n5" && m.type === "MsgApp");
  h.campaign("n5");
  assert.equal(h.raw("n5").status().role, "leader");
  h.drop = (m) => m.from === "n5" || m.to === "n5";
  h.raw("n5").propose(new TextEncoder().encode("n5-entry"));
  h.stabilize();
  h.crash("n5");
  // (c) n1 restarts and wins term 4 with n2 and n3; it replicates "old" (term 2) to n3, so a
  // majority (n1, n2, n3) holds it, but its own term-4 entry does not get through.
  h.start("n1");
  h.heal();
  h.drop = (m) => m.to === "n4" || m.from === "n4" || m.to === "n5" || m.from === "n5";
  let passedOld = false;
  const prevDrop = h.drop;
  h.drop = (m) => {
    if (m.from === "n1" && m.type === "MsgApp" && m.entries) {
      // The leader's own term-4 entries are lost on the way; older ones get through.
      m.entries = m.entries.filter((e) => e.term !== h.raw("n1").status().term);
      if (m.entries.some((e) => e.index === oldIndex)) passedOld = true;
    }
    return prevDrop(m);
  };
  // Term 3 is n5's (n3 voted for it), so n1 needs a second campaign, at term 4.
  h.campaign("n1");
  if (h.raw("n1").status().role !== "leader") h.campaign("n1");
  h.tick(3, ["n1", "n2", "n3"]);
  const s1 = h.raw("n1").status();
  assert.equal(s1.role, "leader");
  assert.ok(passedOld, "the old entry was replicated to a majority");
  assert.ok(
    s1.commit < oldIndex,
    `commit ${s1.commit} must stay below ${oldIndex}: "old" is from term 2`,
  );
  // (d) n1 crashes; n5 (last term 3) can win and overwrite index oldIndex everywhere: safe only
  // because nobody committed or applied "old".
  h.crash("n1");
  h.heal();
  h.start("n5");
  h.drop = (m) => m.to === "n1" || m.from === "n1";
  h.campaign("n5");
  if (h.raw("n5").status().role !== "leader") h.campaign("n5");
  h.tick(2, ["n2", "n3", "n4", "n5"]);
  assert.equal(h.raw("n5").status().role, "leader");
  for (const id of ["n2", "n3", "n4", "n5"]) {
    assert.ok(!h.appliedData(id).includes("old"), `${id} must not apply the overwritten entry`);
    assert.ok(h.appliedData(id).includes("n5-entry"), `${id} applies n5's entry`);
  }
});

Deno.test("§5.4.2 + §6.2 CheckQuorum: a partitioned old leader cannot commit, steps down, then follows", () => {
  const h = new Harness(ids5);
  h.campaign("n1");
  h.isolate("n1");
  h.raw("n1").propose(new TextEncoder().encode("lost"));
  h.stabilize();
  assert.equal(h.raw("n1").status().commit < h.raw("n1").status().lastIndex, true);
  const newLeader = h.waitLeader(200, ["n2", "n3", "n4", "n5"]);
  h.propose(newLeader, "kept");
  h.tick(20, ["n1"]);
  assert.equal(h.raw("n1").status().role, "follower", "the isolated leader stepped down");
  h.heal();
  h.tick(5);
  assert.equal(h.raw("n1").status().leader, newLeader);
  assert.ok(h.appliedData("n1").includes("kept"));
  for (const id of ids5) {
    assert.ok(!h.appliedData(id).includes("lost"), `${id} never applies "lost"`);
  }
});

Deno.test("thesis §9.6 Pre-Vote: a rejoining partitioned node does not disrupt the leader", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  const term = h.raw("n1").status().term;
  h.isolate("n3");
  h.tick(100);
  assert.equal(h.raw("n3").status().term, term, "pre-vote keeps the isolated node's term");
  h.heal();
  h.tick(5);
  assert.equal(h.raw("n1").status().role, "leader");
  assert.equal(h.raw("n1").status().term, term);
  assert.equal(h.raw("n3").status().leader, "n1");
});

Deno.test("without Pre-Vote or CheckQuorum, the same rejoining node does depose the leader (contrast)", () => {
  const h = new Harness(ids3, { preVote: false, checkQuorum: false });
  h.campaign("n1");
  const term = h.raw("n1").status().term;
  h.isolate("n3");
  h.tick(100);
  assert.ok(h.raw("n3").status().term > term);
  h.heal();
  h.tick(30);
  assert.ok(h.raw("n1").status().term > term, "the leader was forced into a new term");
});

Deno.test("a removed node that keeps campaigning does not disrupt the cluster", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  h.isolate("n3");
  h.raw("n1").proposeConfChange({ changes: [{ type: "removeNode", nodeId: "n3" }] });
  h.stabilize();
  h.tick(2);
  assert.deepEqual(h.raw("n1").status().conf.voters, ["n1", "n2"]);
  const term = h.raw("n1").status().term;
  // n3 never learned of its removal: it times out and campaigns over and over.
  h.tick(60);
  h.heal();
  h.tick(60);
  assert.equal(h.raw("n1").status().role, "leader");
  assert.equal(h.raw("n1").status().term, term);
  h.propose("n1", "after");
  assert.ok(h.appliedData("n2").includes("after"));
});

Deno.test("§7: a follower too far behind receives the snapshot in chunks while new entries are appended", () => {
  const h = new Harness(ids3, { snapshotChunkBytes: 8 });
  h.campaign("n1");
  h.isolate("n3");
  for (let i = 0; i < 20; i++) h.propose("n1", `e${i}`);
  const n1 = h.node("n1");
  const applied = n1.raw!.status().applied;
  const state = "state-at-" + applied + ".".repeat(100);
  n1.storage.createSnapshot(applied, n1.conf, new TextEncoder().encode(state));
  n1.storage.compact(applied);
  h.heal();
  let chunks = 0;
  h.drop = (m) => {
    if (m.type === "MsgSnap") {
      chunks++;
      // Meanwhile the leader keeps appending.
      if (chunks === 2) h.raw("n1").propose(new TextEncoder().encode("during"));
    }
    return false;
  };
  h.tick(5);
  assert.ok(chunks > 2, `snapshot sent in ${chunks} chunks`);
  const n3 = h.node("n3");
  assert.equal(n3.storage.snapshot().meta.index, applied);
  assert.equal(new TextDecoder().decode(n3.storage.snapshot().data), state);
  h.propose("n1", "after");
  assert.ok(h.appliedData("n3").includes("during"));
  assert.ok(h.appliedData("n3").includes("after"));
  assert.equal(h.raw("n3").status().applied, h.raw("n1").status().applied);
});

Deno.test("§6: a leader removed by its own configuration change steps down and the rest elect a leader", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  h.raw("n1").proposeConfChange({ changes: [{ type: "removeNode", nodeId: "n1" }] });
  h.stabilize();
  assert.notEqual(h.raw("n1").status().role, "leader");
  assert.throws(() => h.raw("n1").propose(new Uint8Array([1])), ProposalDropped);
  const leader = h.waitLeader(200, ["n2", "n3"]);
  h.propose(leader, "after-removal");
  assert.ok(h.appliedData(leader === "n2" ? "n3" : "n2").includes("after-removal"));
  assert.deepEqual(h.raw(leader).status().conf.voters, ["n2", "n3"]);
});

Deno.test("§6 joint consensus: replacing a voter enters and leaves Cold,new automatically", () => {
  const h = new Harness(ids3, {}, ["n4"]);
  h.campaign("n1");
  h.raw("n1").proposeConfChange({ changes: [{ type: "addLearner", nodeId: "n4" }] });
  h.stabilize();
  h.tick(3);
  assert.equal(h.raw("n1").status().progress["n4"].match, h.raw("n1").status().lastIndex);
  h.raw("n1").proposeConfChange({
    changes: [{ type: "addVoter", nodeId: "n4" }, { type: "removeNode", nodeId: "n3" }],
  });
  h.stabilize();
  h.tick(2);
  const conf = h.raw("n1").status().conf;
  assert.deepEqual(conf.voters, ["n1", "n2", "n4"]);
  assert.deepEqual(conf.votersOutgoing, []);
  assert.equal(
    h.node("n1").applied.filter((a) => a.data === "conf").length,
    3,
    "learner, joint, leave",
  );
  h.crash("n1");
  h.crash("n3");
  const leader = h.waitLeader(200, ["n2", "n4"]);
  h.propose(leader, "new-majority");
  assert.ok(h.appliedData("n4").includes("new-majority"));
});

Deno.test("a node joining an existing cluster starts empty, learns the configuration from a snapshot, then votes", () => {
  const h = new Harness(ids3, {}, ["n4"]);
  h.campaign("n1");
  for (let i = 0; i < 5; i++) h.propose("n1", `e${i}`);
  assert.equal(h.raw("n4").status().conf.voters.length, 0);
  h.tick(30, ["n4"]);
  assert.equal(h.raw("n4").status().role, "follower", "an unconfigured node never campaigns");
  h.raw("n1").proposeConfChange({ changes: [{ type: "addLearner", nodeId: "n4" }] });
  h.stabilize();
  h.tick(3);
  assert.deepEqual(h.raw("n4").status().conf.learners, ["n4"]);
  assert.ok(h.appliedData("n4").includes("e4"));
  h.raw("n1").proposeConfChange({ changes: [{ type: "addVoter", nodeId: "n4" }] });
  h.stabilize();
  h.tick(2);
  assert.deepEqual(h.raw("n4").status().conf.voters, ["n1", "n2", "n3", "n4"]);
  // n4 now counts: with n2 and n3 down, n1 + n4 are not a majority of 4.
  h.crash("n2");
  h.crash("n3");
  const before = h.raw("n1").status().commit;
  h.raw("n1").propose(new TextEncoder().encode("needs-3-of-4"));
  h.stabilize();
  assert.equal(h.raw("n1").status().commit, before);
});

Deno.test("thesis §3.10 leadership transfer: the target takes over without waiting for a timeout", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  const term = h.raw("n1").status().term;
  h.isolate("n3");
  h.propose("n1", "x");
  h.heal();
  // n3 lags; the leader brings it up to date first, then sends MsgTimeoutNow.
  h.raw("n2").transferLeader("n3");
  h.stabilize();
  assert.equal(h.raw("n3").status().role, "leader");
  assert.equal(h.raw("n3").status().term, term + 1);
  for (const id of ids3) assert.equal(h.raw(id).status().leader, "n3");
  assert.ok(h.appliedData("n3").includes("x"));
});

Deno.test("leadership transfer: proposals are refused while it is in progress, and it aborts after a timeout", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  h.isolate("n3");
  h.raw("n1").transferLeader("n3");
  h.stabilize();
  assert.throws(
    () => h.raw("n1").propose(new Uint8Array([1])),
    (e: unknown) => e instanceof ProposalDropped && e.reason === "LeaderTransferring",
  );
  h.tick(12, ["n1", "n2"]);
  assert.equal(h.raw("n1").status().leadTransferee, null);
  h.propose("n1", "after-abort");
});

Deno.test("thesis §6.4 ReadIndex: reads are answered after a heartbeat quorum, on leader and follower", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  h.propose("n1", "x");
  const commit = h.raw("n1").status().commit;
  h.raw("n1").readIndex("r1");
  h.raw("n2").readIndex("r2");
  h.stabilize();
  assert.deepEqual(h.node("n1").readStates, [{ index: commit, context: "r1" }]);
  assert.deepEqual(h.node("n2").readStates, [{ index: commit, context: "r2" }]);
});

Deno.test("ReadIndex: a partitioned leader cannot confirm its leadership, so it answers no read", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  h.isolate("n1");
  h.raw("n1").readIndex("stale?");
  h.tick(3, ["n1"]);
  assert.deepEqual(h.node("n1").readStates, []);
});

Deno.test("lease reads are answered by the leader without a round trip", () => {
  const h = new Harness(ids3, { readOnly: "lease" });
  h.campaign("n1");
  h.isolate("n1");
  h.raw("n1").readIndex("lease");
  h.stabilize();
  assert.equal(h.node("n1").readStates.length, 1);
});

Deno.test("learners replicate but neither vote nor campaign", () => {
  const h = new Harness(ids3, {}, ["n4"]);
  h.campaign("n1");
  h.raw("n1").proposeConfChange({ changes: [{ type: "addLearner", nodeId: "n4" }] });
  h.stabilize();
  h.tick(2);
  h.propose("n1", "x");
  assert.ok(h.appliedData("n4").includes("x"));
  h.isolate("n1");
  h.tick(40, ["n4"]);
  assert.equal(h.raw("n4").status().role, "follower");
});

Deno.test("a restarted node recovers its term, vote and log from storage and catches up", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  h.propose("n1", "a");
  const before = h.raw("n2").status();
  h.crash("n2");
  h.propose("n1", "b");
  h.start("n2");
  const after = h.raw("n2").status();
  assert.equal(after.term, before.term);
  assert.equal(after.vote, before.vote);
  assert.equal(after.lastIndex, before.lastIndex);
  h.tick(2);
  assert.ok(h.appliedData("n2").includes("b"));
});

Deno.test("thesis §4.2.3: a server that heard from a leader within the election timeout ignores vote requests", () => {
  const h = new Harness(ids3, { preVote: false, checkQuorum: true });
  h.campaign("n1");
  const term = h.raw("n1").status().term;
  // n3 hears nothing (one-way loss), times out and asks for votes with an up-to-date log.
  h.drop = (m) => m.to === "n3";
  h.tick(25);
  assert.ok(h.raw("n3").status().term > term, "n3 campaigned");
  assert.equal(h.raw("n1").status().role, "leader");
  assert.equal(
    h.raw("n1").status().term,
    term,
    "nobody in contact with the leader moved to n3's term",
  );
});

Deno.test("flow control: pipelined MsgApp are bounded by maxInflightMsgs and maxSizePerMsgBytes", () => {
  const h = new Harness(ids3, { maxInflightMsgs: 3, maxSizePerMsgBytes: 300 });
  h.campaign("n1");
  const sent: { to: string; bytes: number }[] = [];
  h.drop = (m) => {
    if (m.type === "MsgApp" && m.to === "n2" && (m.entries ?? []).length > 0) {
      sent.push({
        to: m.to,
        bytes: (m.entries ?? []).reduce((a, e) => a + e.data.byteLength + 16, 0),
      });
    }
    return m.type === "MsgAppResp"; // no acknowledgements: the window must fill and stop
  };
  for (let i = 0; i < 50; i++) h.raw("n1").propose(new Uint8Array(100));
  h.stabilize();
  assert.equal(sent.length, 3, "at most maxInflightMsgs unacknowledged messages");
  for (const s of sent) assert.ok(s.bytes <= 300, `message of ${s.bytes} bytes`);
  h.heal();
  h.tick(3);
  assert.equal(h.raw("n2").status().lastIndex, h.raw("n1").status().lastIndex);
});

Deno.test("§5.3 fast backtracking: a long conflicting term is skipped in a few round trips", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  // n1 leads alone for a while and writes 50 entries nobody else gets.
  h.isolate("n1");
  for (let i = 0; i < 50; i++) h.raw("n1").propose(new Uint8Array([i]));
  h.stabilize();
  h.crash("n1");
  h.heal();
  const leader = h.waitLeader(200, ["n2", "n3"]);
  // The new leader writes 50 entries of its own term at the same indexes.
  for (let i = 0; i < 50; i++) h.raw(leader).propose(new Uint8Array([i]));
  h.propose(leader, "new");
  // A fresh leader starts probing n1 at its own (long) log's end.
  const other = leader === "n2" ? "n3" : "n2";
  h.raw(leader).transferLeader(other);
  h.stabilize();
  assert.equal(h.raw(other).status().role, "leader");
  h.start("n1");
  let rejections = 0;
  h.drop = (m) => {
    if (m.type === "MsgAppResp" && m.from === "n1" && m.reject) rejections++;
    return false;
  };
  h.tick(5);
  assert.ok(h.appliedData("n1").includes("new"));
  assert.ok(rejections <= 3, `${rejections} rejections to skip 50 conflicting entries`);
});

/**
 * Crashes the leader `rounds` times, restarting it after its successor is elected, and returns
 * how many ticks each election took; with `report`, the survivors' drivers report the crashed
 * leader's connection closed, as the transport does when a process dies.
 */
function failoverTicks(rounds: number, report: boolean): { ticks: number[]; terms: number[] } {
  const h = new Harness(ids3);
  let leader = h.waitLeader();
  const ticks: number[] = [];
  const terms: number[] = [];
  for (let r = 0; r < rounds; r++) {
    h.propose(leader, `w${r}`);
    h.tick(2); // everyone has just heard a heartbeat
    const term = h.raw(leader).status().term;
    h.crash(leader);
    const survivors = ids3.filter((id) => id !== leader);
    if (report) { for (const id of survivors) h.raw(id).reportPeerDisconnected(leader); }
    let t = 0;
    while (h.leaders().filter((l) => l.id !== leader).length === 0) {
      h.tick(1, survivors);
      t++;
      assert.ok(t < 200, "no new leader within 200 ticks");
    }
    ticks.push(t);
    const old = leader;
    leader = h.leaders()[0].id;
    terms.push(h.raw(leader).status().term - term);
    h.start(old);
    h.tick(3);
    assert.ok(h.appliedData(old).includes(`w${r}`), "the restarted member caught up");
  }
  return { ticks: ticks.sort((a, b) => a - b), terms };
}

Deno.test("a leader whose connection closed on every survivor is replaced within the random part of the election timeout", () => {
  const reported = failoverTicks(40, true);
  const unreported = failoverTicks(15, false).ticks;
  // electionTicks is 10: without the report, the survivors' leases and timers hold at least
  // that long; with it, only the randomised part [0, 10) ticks remains.
  assert.ok(unreported[0] >= 10, `unreported failovers took ${unreported} ticks`);
  // The survivors tick in lockstep here, so both often campaign in the same tick: each of those
  // elections must still end in the next term, without a split vote's second timeout.
  assert.ok(reported.ticks.at(-1)! < 10, `reported failovers took ${reported.ticks} ticks`);
  assert.deepEqual(reported.terms, reported.terms.map(() => 1), "one term per failover");
});

Deno.test("two pre-candidates that grant each other's Pre-Vote elect one leader in the next term", () => {
  for (const first of ["n2", "n3"]) {
    const h = new Harness(ids3);
    h.campaign("n1");
    const term = h.raw("n1").status().term;
    h.crash("n1");
    const other = first === "n2" ? "n3" : "n2";
    h.raw(first).campaign();
    h.raw(other).campaign();
    // Each Pre-Vote reaches the other while it is itself a pre-candidate; both are granted.
    h.stabilize();
    assert.deepEqual(h.leaders(), [{ id: "n2", term: term + 1 }], `${first} first`);
    assert.equal(h.raw("n3").status().leader, "n2");
    assert.equal(h.raw("n3").status().term, term + 1);
    h.propose("n2", "after");
    assert.ok(h.appliedData("n3").includes("after"));
  }
});

Deno.test("a false disconnect report (the leader lives) neither deposes the leader nor raises a term", () => {
  const h = new Harness(ids3);
  h.campaign("n1");
  const term = h.raw("n1").status().term;
  h.raw("n2").reportPeerDisconnected("n1");
  assert.equal(h.raw("n2").status().leader, null, "n2 forgot its leader");
  h.tick(40);
  assert.equal(h.raw("n1").status().role, "leader");
  for (const id of ids3) {
    assert.equal(h.raw(id).status().term, term);
    assert.equal(h.raw(id).status().leader, "n1");
  }
  h.propose("n1", "after");
  for (const id of ids3) assert.ok(h.appliedData(id).includes("after"));
});

Deno.test("a disconnect report is ignored for a member that is not the leader, with lease reads, and without Pre-Vote", () => {
  for (const over of [{}, { readOnly: "lease" as const }, { preVote: false }]) {
    const h = new Harness(ids3, over);
    h.campaign("n1");
    h.raw("n2").reportPeerDisconnected(Object.keys(over).length === 0 ? "n3" : "n1");
    assert.equal(h.raw("n2").status().leader, "n1", JSON.stringify(over));
  }
});
