import assert from "node:assert/strict";
import { checkEvents } from "./checker.ts";
import { formatCheckResult } from "./explain.ts";
import { registerModel } from "./register_model.ts";
import { history } from "./test_histories.ts";

Deno.test("a violation's account names the prefix, its state and the stuck operations", () => {
  const events = history(
    [0, "invoke", "write", 1],
    [0, "ok", "write", 1],
    [0, "invoke", "cas", [1, 2]],
    [0, "ok", "cas", [1, 2]],
    [1, "invoke", "write", 5],
    [1, "info", "write"],
    [2, "invoke", "read"],
    [2, "ok", "read", 1],
  );
  const text = formatCheckResult(checkEvents(registerModel, events), registerModel)
    .replace(/\d+ steps, [\d.]+ ms/, "S steps, T ms");
  assert.equal(
    text,
    [
      "not linearizable (4 operations in 1 partition; S steps, T ms)",
      "longest linearizable prefix found: 3 operations, ending in state 5",
      "  #0 process 0 write(1) [0, 1]",
      "  #1 process 0 cas(1, 2) -> ok [2, 3]",
      "  #2 process 1 write(5) -> ? [4, ∞)",
      "none of these can come next; the model rejects each in state 5:",
      "  #3 process 2 read() -> 1 [6, 7]",
    ].join("\n"),
  );
});

Deno.test("long prefixes are cut to their end; linearizable results are one line", () => {
  const events = [];
  for (let i = 0; i < 30; i++) {
    events.push(...history([0, "invoke", "write", i], [0, "ok", "write", i]));
  }
  const ok = checkEvents(registerModel, events);
  assert.match(
    formatCheckResult(ok, registerModel),
    /^linearizable \(30 operations in 1 partition; /,
  );
  events.push(...history([1, "invoke", "read"], [1, "ok", "read", 3]));
  const text = formatCheckResult(checkEvents(registerModel, events), registerModel, {
    prefixOpsMax: 2,
  });
  assert.ok(
    text.includes("30 operations, ending in state 29\n  … 28 earlier operations\n  #28 "),
    text,
  );
});
