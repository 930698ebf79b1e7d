import assert from "node:assert/strict";
import { RaftLog } from "../log.ts";
import { RawNode } from "../raw_node.ts";
import {
  defaultSimOptions,
  describeFailure,
  simulate,
  Simulation,
  zeroCounters,
} from "./cluster.ts";

const seedsPerSize = 2000;

for (const nodes of [3, 5, 7]) {
  Deno.test(`simulation: ${seedsPerSize} seeds of a ${nodes}-node cluster keep every safety property and recover`, () => {
    const failures: string[] = [];
    for (let seed = 0; seed < seedsPerSize; seed++) {
      const r = simulate(seed, nodes);
      if (!r.ok) failures.push(describeFailure(r));
      if (failures.length >= 3) break;
    }
    assert.deepEqual(failures, []);
  });
}

Deno.test("simulation: a seed replays exactly", () => {
  const a = simulate(1234, 5);
  const b = simulate(1234, 5);
  assert.deepEqual(a, b);
  assert.ok(a.ok);
});

Deno.test("simulation: the runs exercise crashes, elections, snapshots, membership, reads and disconnect reports", () => {
  const total = { ...zeroCounters(), committed: 0 };
  for (let seed = 0; seed < 100; seed++) {
    const r = simulate(seed, 3);
    for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += r[k];
  }
  for (const [k, v] of Object.entries(total)) assert.ok(v >= 40, `${k}: only ${v} over 100 seeds`);
});

Deno.test("simulation: the checker catches a node applying a different entry", () => {
  // Corrupt one node's applied state: the state-machine-safety check must fire.
  const sim = new Simulation({ ...defaultSimOptions(7, 3), chaosTicks: 40 });
  let corrupted = false;
  const realStep = sim.step.bind(sim);
  sim.step = () => {
    realStep();
    const n = sim.nodes.get("n1")!;
    if (!corrupted && n.app.applied > 3) {
      corrupted = true;
      n.app.digest ^= 1;
    }
  };
  const r = sim.run();
  assert.equal(r.ok, false);
  assert.match(r.error ?? "", /state machine safety/);
});

/** Runs seeds until one fails; returns its error. */
function firstFailure(nodes: number, seeds: number): string | undefined {
  for (let seed = 0; seed < seeds; seed++) {
    const r = simulate(seed, nodes);
    if (!r.ok) return r.error;
  }
  return undefined;
}

Deno.test("simulation: a driver that sends everything before persisting is caught", () => {
  const real = RawNode.prototype.ready;
  RawNode.prototype.ready = function (this: RawNode) {
    const rd = real.call(this);
    rd.messages.push(...rd.messagesAfterPersist);
    rd.messagesAfterPersist = [];
    return rd;
  };
  try {
    assert.match(firstFailure(3, 50) ?? "", /persistence contract/);
  } finally {
    RawNode.prototype.ready = real;
  }
});

Deno.test("simulation: granting votes without the §5.4.1 up-to-date check is caught", () => {
  const real = RaftLog.prototype.isUpToDate;
  RaftLog.prototype.isUpToDate = () => true;
  try {
    assert.match(
      firstFailure(5, 500) ?? "",
      /leader completeness|state machine safety|log matching/,
    );
  } finally {
    RaftLog.prototype.isUpToDate = real;
  }
});
