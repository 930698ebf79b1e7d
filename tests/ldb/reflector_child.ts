/**
 * Runs a reflector until killed: the process the kill -9 test murders. (`ctl reflector` is the
 * same component behind the CLI; this script avoids depending on main.ts being wired.)
 *
 * Usage: deno run -A tests/ldb/reflector_child.ts LDB_PATH EXECUTIVE_URL [CHANGELOG_PATH]
 */
import { Reflector } from "../../src/reflector/reflector.ts";

const [ldbPath, url, changelogPath] = Deno.args;
const reflector = new Reflector({
  ldbPath,
  executives: [url],
  changelog: changelogPath
    ? { path: changelogPath, rotateBytes: 64 * 1024, filesMax: 1_000 }
    : undefined,
  backoffMinMs: 10,
  backoffMaxMs: 100,
});
console.log("started");
await reflector.run();
