/**
 * Keeps the benchmark runnable: `bench/run.ts --quick --only reader` prints its table and writes
 * a results file that parses as JSON with the reader figure in it.
 */
import assert from "node:assert/strict";

Deno.test("bench/run.ts --quick --only reader prints a table and writes valid JSON", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-bench-smoke-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("../run.ts", import.meta.url).pathname,
        "--quick",
        "--only",
        "reader",
        "--results-dir",
        dir,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `bench/run.ts exited ${out.code}:\n${stdout}\n${stderr}`);
    assert.match(stdout, /figure .*unit .*ctl median .*ctl p99/);
    assert.match(stdout, /reader library getRowByKey/);
    assert.match(stdout, /\b(met|missed)\b/);

    const files = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.equal(files.length, 1, `expected one results file, found ${files.join(", ")}`);
    assert.match(files[0], /^\d{4}-\d\d-\d\dT.*\.json$/);
    const report = JSON.parse(Deno.readTextFileSync(`${dir}/${files[0]}`));
    assert.ok(Array.isArray(report.results) && report.results.length >= 1);
    const reader = report.results.find((r: { bench: string }) => r.bench === "reader");
    assert.ok(reader, "no reader result");
    assert.equal(reader.unit, "µs");
    assert.ok(reader.median > 0 && reader.p99 >= reader.median, JSON.stringify(reader));
    assert.ok(reader.status === "met" || reader.status === "missed");
    assert.ok(typeof report.environment.deno === "string");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
