import assert from "node:assert/strict";
import {
  configFromConfState,
  confStateFromConfig,
  decodeConfChange,
  encodeConfChange,
  nextConfig,
} from "./confchange.ts";
import { RaftError } from "./errors.ts";
import { emptyConfState } from "./storage.ts";

const base = () => configFromConfState({ ...emptyConfState(), voters: ["a", "b", "c"] });
const invalid = (e: unknown) => e instanceof RaftError && e.code === "ConfChangeInvalid";

Deno.test("conf change: encode/decode round-trips and rejects garbage", () => {
  const cc = {
    changes: [{ type: "addVoter" as const, nodeId: "d" }],
    transition: "explicit" as const,
  };
  assert.deepEqual(decodeConfChange(encodeConfChange(cc)), { ...cc, context: undefined });
  assert.throws(() => decodeConfChange(new TextEncoder().encode("{")), invalid);
  assert.throws(
    () => decodeConfChange(new TextEncoder().encode('{"changes":[{"type":"x","nodeId":"a"}]}')),
    invalid,
  );
});

Deno.test("conf change: simple changes touch at most one voter", () => {
  let c = nextConfig(base(), { changes: [{ type: "addLearner", nodeId: "d" }] });
  assert.deepEqual(confStateFromConfig(c).learners, ["d"]);
  c = nextConfig(c, { changes: [{ type: "addVoter", nodeId: "d" }] });
  assert.deepEqual(confStateFromConfig(c).voters, ["a", "b", "c", "d"]);
  assert.deepEqual(confStateFromConfig(c).learners, []);
  assert.equal(c.votersOutgoing.size, 0, "one change: no joint configuration");
  const two = nextConfig(base(), {
    changes: [{ type: "addVoter", nodeId: "d" }, { type: "removeNode", nodeId: "a" }],
    transition: "auto",
  });
  assert.equal(two.votersOutgoing.size, 3, "two voter changes: joint");
});

Deno.test("conf change: several voters go through a joint configuration, then leave it", () => {
  const joint = nextConfig(base(), {
    changes: [{ type: "addVoter", nodeId: "d" }, { type: "removeNode", nodeId: "a" }],
  });
  const cs = confStateFromConfig(joint);
  assert.deepEqual(cs.voters, ["b", "c", "d"]);
  assert.deepEqual(cs.votersOutgoing, ["a", "b", "c"]);
  assert.equal(cs.autoLeave, true);
  assert.throws(() => nextConfig(joint, { changes: [{ type: "addVoter", nodeId: "e" }] }), invalid);
  const left = confStateFromConfig(nextConfig(joint, { changes: [] }));
  assert.deepEqual(left.voters, ["b", "c", "d"]);
  assert.deepEqual(left.votersOutgoing, []);
  assert.equal(left.autoLeave, false);
  assert.throws(() => nextConfig(base(), { changes: [] }), invalid, "leave when not joint");
});

Deno.test("conf change: demoting a voter in a joint config makes it a learner only on leaving", () => {
  const joint = nextConfig(base(), {
    changes: [{ type: "addLearner", nodeId: "c" }],
    transition: "explicit",
  });
  const cs = confStateFromConfig(joint);
  assert.deepEqual(cs.learnersNext, ["c"]);
  assert.deepEqual(cs.votersOutgoing, ["a", "b", "c"]);
  assert.equal(cs.autoLeave, false);
  const left = confStateFromConfig(nextConfig(joint, { changes: [] }));
  assert.deepEqual(left.learners, ["c"]);
  assert.deepEqual(left.voters, ["a", "b"]);
});

Deno.test("conf change: removing every voter is refused", () => {
  const one = configFromConfState({ ...emptyConfState(), voters: ["a"] });
  assert.throws(() => nextConfig(one, { changes: [{ type: "removeNode", nodeId: "a" }] }), invalid);
});
