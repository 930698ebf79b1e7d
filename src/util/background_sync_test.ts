import assert from "node:assert/strict";
import { join } from "node:path";
import { startBackgroundSync } from "./background_sync.ts";

Deno.test("startBackgroundSync flushes a growing file from a worker and stops cleanly", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ctl-bgsync-" });
  try {
    const path = join(dir, "copy.db");
    const sync = startBackgroundSync(path, 10);
    // The file appears only after the worker started, as VACUUM INTO's output does.
    await new Promise((r) => setTimeout(r, 30));
    using file = Deno.openSync(path, { write: true, create: true });
    for (let i = 0; i < 10; i++) {
      file.writeSync(new Uint8Array(64 * 1024));
      await new Promise((r) => setTimeout(r, 15));
    }
    const flushes = await sync.stop();
    assert.ok(flushes >= 1, `worker reported ${flushes} flushes`);
    assert.equal(await sync.stop(), flushes, "stop() is idempotent");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
