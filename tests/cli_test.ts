/**
 * The `ctl` program as a newcomer meets it: `--help`, `--version`, bad flags, and the same from
 * the single-file bundle that `make build` produces.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { buildProgram, VERSION } from "../cmd/main.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

async function ctl(args: string[], entry = "main.ts") {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", entry, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Every subcommand path, e.g. ["cluster", "status"]. */
function commandPaths(): string[][] {
  const paths: string[][] = [];
  const walk = (cmd: ReturnType<typeof buildProgram>, prefix: string[]) => {
    for (const sub of cmd.commands) {
      paths.push([...prefix, sub.name()]);
      walk(sub, [...prefix, sub.name()]);
    }
  };
  walk(buildProgram(), []);
  return paths;
}

Deno.test("ctl --help lists every command and the global flags with their defaults", async () => {
  const { code, stdout } = await ctl(["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /Usage: ctl/);
  const flat = stdout.replace(/\s+/g, " ");
  assert.match(
    flat,
    /--log-level <LEVEL> lowest level to log .*default: "info", env: CTL_LOG_LEVEL/,
  );
  for (const path of commandPaths().filter((p) => p.length === 1)) {
    assert.match(stdout, new RegExp(`\\n\\s+${path[0]}\\b`), `--help lists ${path[0]}`);
  }
});

Deno.test("ctl <command> --help shows each flag with its environment variable", () => {
  for (const path of commandPaths()) {
    let cmd = buildProgram();
    for (const name of path) cmd = cmd.commands.find((c) => c.name() === name)!;
    const help = cmd.helpInformation();
    for (const option of cmd.options) {
      if (option.long === "--help") continue;
      assert.ok(help.includes(option.long!), `${path.join(" ")} --help shows ${option.long}`);
      assert.ok(option.envVar?.startsWith("CTL_"), `${option.long} has a CTL_ variable`);
    }
  }
});

Deno.test("ctl --version prints the version", async () => {
  const { code, stdout } = await ctl(["--version"]);
  assert.equal(code, 0);
  assert.equal(stdout.trim(), VERSION);
});

Deno.test("a bad flag exits 2 with a message naming it", async () => {
  const { code, stderr } = await ctl(["--no-such-flag"]);
  assert.equal(code, 2);
  assert.match(stderr, /unknown option '--no-such-flag'/);
});

Deno.test("a bad log level exits 2 naming the allowed values", async () => {
  const { code, stderr } = await ctl(["--log-level", "loud", "--help"]);
  assert.equal(code, 2);
  assert.match(stderr, /--log-level.*loud.*invalid/s);
});

Deno.test("the deno bundle runs with plain deno run and shows the same help", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-bundle-" });
  try {
    const bundle = `${dir}/ctl.js`;
    const built = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "-o", bundle, "main.ts"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(built.code, 0, new TextDecoder().decode(built.stderr));
    const fromBundle = await ctl(["--help"], bundle);
    const fromSource = await ctl(["--help"]);
    assert.equal(fromBundle.code, 0, fromBundle.stderr);
    assert.equal(fromBundle.stdout, fromSource.stdout);
    const bad = await ctl(["--no-such-flag"], bundle);
    assert.equal(bad.code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
