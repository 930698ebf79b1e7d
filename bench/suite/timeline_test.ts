import assert from "node:assert/strict";
import { lineUp, STEPS } from "./timeline.ts";

const marks = (...pairs: [number, string][]) => pairs.map(([t, point]) => ({ t, point }));

Deno.test("timeline: a write's steps come from the leader and the follower that acked first", () => {
  const leader = marks(
    [0.5, "frame"], // a heartbeat answer before the write: not its acknowledgement
    [1, "http.in"],
    [2, "propose"],
    [3, "ready"],
    [4, "wire"],
    [4.1, "wire"],
    [4.5, "written"],
    [5, "synced"],
    [9, "frame"],
    [9.5, "frame"],
    [10, "apply"],
    [11, "applied"],
    [12, "reply"],
  );
  const slow = marks([5, "frame"], [6, "written"], [8.9, "synced"], [9.4, "acked"]);
  const fast = marks([4.2, "frame"], [4.4, "written"], [8, "synced"], [8.5, "acked"]);
  const at = lineUp(0, 13, leader, [slow, fast]);
  assert.ok(at);
  assert.deepEqual(
    [at["F.frame"], at["F.written"], at["F.synced"], at["F.acked"], at["L.frame"]],
    [4.2, 4.4, 8, 8.5, 9],
  );
  const total = STEPS.reduce((sum, [, from, to]) => sum + at[to] - at[from], 0);
  assert.ok(Math.abs(total - 13) < 1e-9, "the steps follow each other from send to answer");
});

Deno.test("timeline: a write with a mark missing is left out, not guessed", () => {
  const leader = marks([1, "http.in"], [2, "propose"], [4, "wire"], [9, "frame"], [12, "reply"]);
  const follower = marks([4.2, "frame"], [4.4, "written"], [8, "synced"], [8.5, "acked"]);
  assert.equal(lineUp(0, 13, leader, [follower]), null, "no apply recorded");
  assert.equal(lineUp(0, 13, marks([1, "http.in"]), [follower]), null);
});

Deno.test("timeline: an executive records marks only when CTL_TIMELINE_DIR is set", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-timeline-test-" });
  try {
    const module = new URL("../../src/util/timeline.ts", import.meta.url).href;
    const code = `import { mark, flushTimeline } from "${module}";
      mark("http.in"); mark("reply"); flushTimeline();`;
    const envs: Record<string, string>[] = [{}, { CTL_TIMELINE_DIR: `${dir}/on` }];
    for (const env of envs) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        env: { ...env, NO_COLOR: "1" },
        cwd: dir,
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    }
    const files = [...Deno.readDirSync(`${dir}/on`)];
    assert.equal(files.length, 1);
    const lines = Deno.readTextFileSync(`${dir}/on/${files[0].name}`).trim().split("\n");
    assert.deepEqual(lines.map((l) => l.split(" ")[1]), ["http.in", "reply"]);
    assert.ok(Math.abs(Number(lines[0].split(" ")[0]) - Date.now()) < 60_000, "wall-clock ms");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["on"], "off: no file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
