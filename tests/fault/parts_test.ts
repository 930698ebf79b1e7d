/**
 * The fault suite's own parts, without root: the delay proxy on loopback, the unavailability
 * window, and schedules drawn from seeds.
 */
import assert from "node:assert/strict";
import { freePorts, sleep, waitFor } from "../system/harness.ts";
import { longestGap, scheduleFromSeed } from "./schedule.ts";

const PROXY = new URL("./delay_proxy.ts", import.meta.url).pathname;

Deno.test("longestGap: the widest stretch between successful writes, edges included", () => {
  assert.deepEqual(longestGap([100, 150, 900], 1000), { gapMs: 750, atMs: 150 });
  assert.deepEqual(longestGap([], 500), { gapMs: 500, atMs: 0 });
  assert.deepEqual(longestGap([900, 100], 950), { gapMs: 800, atMs: 100 });
});

Deno.test("scheduleFromSeed: the same seed draws the same schedule; seeds vary kind and size", () => {
  assert.deepEqual(scheduleFromSeed(7), scheduleFromSeed(7));
  const drawn = Array.from({ length: 40 }, (_, i) => scheduleFromSeed(i));
  assert.ok(new Set(drawn.map((s) => s.kind)).size >= 6, "kinds vary with the seed");
  assert.deepEqual(new Set(drawn.map((s) => s.size)), new Set([3, 5]));
  assert.equal(scheduleFromSeed(3, { kind: "kill", size: 5 }).kind, "kill");
});

async function roundTripMs(port: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const t0 = performance.now();
    await conn.write(new TextEncoder().encode("ping"));
    const buf = new Uint8Array(16);
    let got = 0;
    while (got < 4) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) throw new Error("proxy closed the connection");
      got += n;
    }
    assert.equal(new TextDecoder().decode(buf.subarray(0, 4)), "ping");
    return performance.now() - t0;
  } finally {
    conn.close();
  }
}

Deno.test({
  name: "delay proxy: passes bytes through, and delays both directions as its control file says",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ctl-fault-proxy-" });
    const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      for await (const c of echo) {
        (async () => {
          const buf = new Uint8Array(1024);
          try {
            for (;;) {
              const n = await c.read(buf);
              if (n === null) break;
              await c.write(buf.subarray(0, n));
            }
          } catch { /* closed */ }
          c.close();
        })();
      }
    })().catch(() => {});
    const [port] = freePorts(1);
    const control = `${dir}/control`;
    await Deno.writeTextFile(control, "0 0\n");
    const proxy = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        PROXY,
        String(port),
        `127.0.0.1:${(echo.addr as Deno.NetAddr).port}`,
        control,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const fast = await waitFor("the proxy to answer", () => roundTripMs(port), 15_000, 100);
      assert.ok(fast < 100, `no delay configured, yet a round trip took ${fast} ms`);
      await Deno.writeTextFile(control, "150 0\n");
      await sleep(300); // the proxy re-reads its control file every 100 ms
      const slow = await roundTripMs(port);
      assert.ok(slow >= 290, `150 ms each way, yet a round trip took ${slow} ms`);
      await Deno.writeTextFile(control, "0 0\n");
      await sleep(300);
      assert.ok((await roundTripMs(port)) < 100, "the delay is gone once the file says 0 0");
    } finally {
      proxy.kill("SIGKILL");
      await proxy.status;
      echo.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
