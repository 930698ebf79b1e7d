import assert from "node:assert/strict";
import { hashSecret, verifySecret } from "./secrets.ts";

Deno.test("verifySecret accepts the registered secret, again and again, and nothing else", () => {
  const stored = hashSecret("secret-one");
  assert.ok(verifySecret(stored, "secret-one"));
  assert.ok(verifySecret(stored, "secret-one")); // the second check is the remembered one
  assert.ok(!verifySecret(stored, "secret-two"));
  assert.ok(!verifySecret(stored, "secret-on"));
  assert.ok(!verifySecret(stored, ""));
  assert.ok(verifySecret(stored, "secret-one"));
});

Deno.test("verifySecret remembers a match per stored hash, not per salt", () => {
  const first = hashSecret("secret-one", "00".repeat(16));
  assert.ok(verifySecret(first, "secret-one"));
  // The same salt with another secret's hash: the first secret must not pass on memory.
  const second = hashSecret("secret-two", "00".repeat(16));
  assert.ok(!verifySecret(second, "secret-one"));
  assert.ok(verifySecret(second, "secret-two"));
  assert.ok(!verifySecret(first, "secret-two"));
});

Deno.test("verifySecret stays correct past the number of remembered secrets", () => {
  // A stored hash matches one secret; many wrong ones never become accepted.
  const stored = hashSecret("secret-one");
  for (let i = 0; i < 20; i++) assert.ok(!verifySecret(stored, `wrong-${i}`));
  assert.ok(verifySecret(stored, "secret-one"));
  for (let i = 0; i < 20; i++) assert.ok(!verifySecret(stored, `wrong-${i}`));
});
