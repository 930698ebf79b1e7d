import assert from "node:assert/strict";
import { ConfigSet } from "./config_set.ts";

Deno.test("a config set tells new configurations from visited ones, across growth", () => {
  const set = new ConfigSet(2);
  const bits = new Uint32Array(2);
  // Deliberately poor hashes (many collisions) to exercise probing.
  for (let i = 0; i < 5_000; i++) {
    bits[0] = i;
    bits[1] = i * 7;
    assert.equal(set.add(bits, i % 3, i % 17), true);
  }
  assert.equal(set.size, 5_000);
  for (let i = 0; i < 5_000; i++) {
    bits[0] = i;
    bits[1] = i * 7;
    assert.equal(set.add(bits, i % 3, i % 17), false, `config ${i} is already present`);
    assert.equal(set.add(bits, 3, i % 17), true, `config ${i} in another state is new`);
    assert.equal(set.add(bits, 3, i % 17), false, `config ${i} in another state is now present`);
  }
  assert.equal(set.size, 10_000);
});

Deno.test("a config set refuses a bitset of another size", () => {
  assert.throws(() => new ConfigSet(1).add(new Uint32Array(2), 0, 0), /2 words/);
});
