import assert from "node:assert/strict";
import { bytesEqual, concatBytes, concatBytesYielding, YIELD_EVERY_BYTES } from "./bytes.ts";

Deno.test("concatBytes joins parts in order into a fresh array", () => {
  const backing = new Uint8Array([9, 1, 2, 3, 9]);
  const view = backing.subarray(1, 4);
  const out = concatBytes([view, new Uint8Array(0), new Uint8Array([4, 5])]);
  assert.deepEqual([...out], [1, 2, 3, 4, 5]);
  backing[1] = 7;
  assert.equal(out[0], 1, "not a view into a part");
  assert.equal(concatBytes([]).length, 0);
});

Deno.test("concatBytesYielding joins like concatBytes, with turns of the event loop between slices", async () => {
  const a = new Uint8Array(YIELD_EVERY_BYTES + 123).map((_, i) => i & 255);
  const b = new Uint8Array(2 * YIELD_EVERY_BYTES).fill(9);
  let turns = 0;
  const ticker = setInterval(() => turns++, 0);
  const out = await concatBytesYielding([a, new Uint8Array(0), b]);
  clearInterval(ticker);
  assert.ok(bytesEqual(out, concatBytes([a, b])));
  assert.ok(turns >= 1, "other work ran while it copied");
  assert.equal((await concatBytesYielding([])).length, 0);
});

Deno.test("bytesEqual compares contents and lengths", () => {
  assert.ok(bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  assert.ok(!bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
  assert.ok(!bytesEqual(new Uint8Array([1]), new Uint8Array([1, 0])));
});
