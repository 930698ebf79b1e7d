import assert from "node:assert/strict";
import { concatBytes } from "./bytes.ts";

Deno.test("concatBytes joins parts in order into a fresh array", () => {
  const backing = new Uint8Array([9, 1, 2, 3, 9]);
  const view = backing.subarray(1, 4);
  const out = concatBytes([view, new Uint8Array(0), new Uint8Array([4, 5])]);
  assert.deepEqual([...out], [1, 2, 3, 4, 5]);
  backing[1] = 7;
  assert.equal(out[0], 1, "not a view into a part");
  assert.equal(concatBytes([]).length, 0);
});
