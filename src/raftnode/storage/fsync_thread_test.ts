import assert from "node:assert/strict";
import { FsyncThread } from "./fsync_thread.ts";

Deno.test("FsyncThread: fdatasyncs files by path, answers on the caller's thread or through the event loop, and reports a failure by name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-fsync-thread-" });
  const fsync = new FsyncThread();
  try {
    const a = `${dir}/a`;
    const b = `${dir}/b`;
    await Deno.writeTextFile(a, "a");
    await Deno.writeTextFile(b, "b");
    fsync.request(a);
    assert.equal(fsync.waitSync(5_000), true, "the thread starts and answers within 5 s");
    fsync.request(a);
    await fsync.wait();
    fsync.request(b); // another file: the thread opens it
    await fsync.wait();

    const missing = `${dir}/missing`;
    fsync.request(missing);
    assert.throws(() => fsync.waitSync(5_000), (e: Error) => e.message.includes(missing));
    fsync.request(missing);
    await assert.rejects(fsync.wait(), (e: Error) => e.message.includes(missing));
    // A failure is not sticky: the next file is synced again.
    fsync.request(b);
    assert.equal(fsync.waitSync(5_000), true);
  } finally {
    // Without it the live thread would keep this test process from ending.
    fsync.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.throws(() => fsync.request(`${dir}/a`), /closed/);
});
