/**
 * The README's walkthrough, run exactly as written (only the ports are moved out of the way)
 * against `ctl up`, then Ctrl-C, then `ctl up` again on the same data.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { freePorts, sleep, waitFor } from "./system/harness.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The shell lines between the walkthrough markers of README.md. */
async function walkthrough(): Promise<string> {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const m = /<!-- walkthrough:start -->\s*```sh\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(
    readme,
  );
  assert.ok(m, "README.md has a walkthrough between the markers");
  return m[1];
}

/** The first of `n` consecutive free loopback ports (the executives' ports). */
function consecutiveFreePorts(n: number): number {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 30_000 + Math.floor(Math.random() * 25_000);
    const held: Deno.Listener[] = [];
    try {
      for (let i = 0; i < n; i++) held.push(Deno.listen({ hostname: "127.0.0.1", port: base + i }));
      return base;
    } catch {
      continue;
    } finally {
      held.forEach((l) => l.close());
    }
  }
  throw new Error(`no ${n} consecutive free ports found`);
}

interface Up {
  proc: Deno.ChildProcess;
  output: () => string;
  exited: () => boolean;
}

/** Waits for "ctl is up"; fails at once, with ctl up's output, if it exits or times out. */
async function waitUp(up: Up): Promise<void> {
  await waitFor("ctl up to say it is up", () => {
    if (up.output().includes("ctl is up")) return true;
    if (up.exited()) throw new Error("ctl up exited");
    return false;
  }, 60_000).catch((e) => {
    throw new Error(`${e.message}; its output:\n${up.output()}`);
  });
}

function startUp(dir: string, ports: number[]): Up {
  const [base, sidecar, reflector] = ports;
  const proc = new Deno.Command(`${ROOT}/ctl`, {
    args: [
      "up",
      "--base-port",
      String(base),
      "--sidecar-port",
      String(sidecar),
      "--reflector-port",
      String(reflector),
    ],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) text += dec.decode(chunk);
  };
  pump(proc.stdout).catch(() => {});
  pump(proc.stderr).catch(() => {});
  let exited = false;
  proc.status.then(() => exited = true);
  return { proc, output: () => text, exited: () => exited };
}

Deno.test({
  name: "the README walkthrough works against ctl up; Ctrl-C stops it; it restarts on its data",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ctl-walkthrough-" });
    const ports = [consecutiveFreePorts(3), ...freePorts(1), consecutiveFreePorts(3)];
    const [base, sidecar, status] = ports;
    const script = (await walkthrough())
      .replaceAll("http://127.0.0.1:7001", `http://127.0.0.1:${base}`)
      .replaceAll("http://127.0.0.1:1331", `http://127.0.0.1:${sidecar}`)
      .replaceAll("./ctl", `${ROOT}/ctl`);
    assert.ok(!script.includes(":7002"), "the walkthrough talks to the first executive only");
    let up = startUp(dir, ports);
    try {
      await waitUp(up);
      // The heartbeat and the supervisor export their figures too.
      const metrics = async (port: number) =>
        await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(await metrics(status + 1), /ctl_heartbeat_beats_total \d+/);
      assert.match(await metrics(status + 2), /ctl_supervisor_cycles_total\{outcome="\w+"\} \d+/);
      const run = await new Deno.Command("bash", {
        args: ["-euo", "pipefail", "-c", script],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(run.stdout);
      const err = new TextDecoder().decode(run.stderr);
      assert.equal(run.code, 0, `walkthrough failed:\n${out}\n${err}`);
      // ctl query and the sidecar both show the row written through the executive.
      const rows = out.split("\n").filter((l) => l.includes('"dark-mode"'));
      assert.ok(rows.some((l) => l.includes('"name":"dark-mode","enabled":1')), out);
      assert.ok(rows.length >= 2, `query and sidecar both print the row:\n${out}`);

      up.proc.kill("SIGINT");
      assert.equal((await up.proc.status).code, 0, up.output());
      assert.match(up.output(), /Stopping on SIGINT/);
      assert.equal((up.output().match(/ stopped /g) ?? []).length, 7, "all seven stopped");

      // Running it again reuses the data: the row is still there, served by the sidecar.
      up = startUp(dir, ports);
      await waitUp(up);
      const again = await waitFor("the row from the sidecar", async () => {
        const res = await fetch(`http://127.0.0.1:${sidecar}/get-row-by-key/demo/flags`, {
          method: "POST",
          body: JSON.stringify({ key: [{ value: "dark-mode" }] }),
        });
        return res.ok ? await res.json() : (await res.body?.cancel(), undefined);
      });
      assert.deepEqual(again, { name: "dark-mode", enabled: 1 });
    } finally {
      try {
        up.proc.kill("SIGINT");
      } catch { /* already stopped */ }
      await up.proc.status;
      await sleep(100);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
