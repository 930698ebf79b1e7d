/**
 * The purity rule of raft/, as a test: no clocks, timers, randomness, I/O, async or imports
 * leaving the folder. The simulator's command-line entry points may read Deno.args and exit.
 */

import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const raftDir = dirname(fileURLToPath(import.meta.url));

/** Entry points that run the pure simulator from a command line. */
const entryPoints = new Set(["sim/run.ts", "sim/soak.ts"]);

const forbidden: { pattern: RegExp; why: string }[] = [
  { pattern: /\bDate\b/, why: "reads the clock" },
  { pattern: /\bperformance\b/, why: "reads the clock" },
  { pattern: /Math\.random/, why: "unseeded randomness" },
  { pattern: /\bDeno\./, why: "I/O through the runtime" },
  { pattern: /\bset(Timeout|Interval)\b/, why: "timers" },
  { pattern: /\basync\b|\bawait\b/, why: "asynchrony" },
  { pattern: /\bfetch\s*\(/, why: "network" },
  { pattern: /\bimport\s*\(/, why: "dynamic import" },
  { pattern: /\bprocess\./, why: "I/O through node globals" },
];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...sourceFiles(p));
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) out.push(p);
  }
  return out.sort();
}

/** Removes comments so that prose may mention what code must not use. */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

/** Every import specifier in `src`. */
function importSpecifiers(src: string): string[] {
  const out: string[] = [];
  for (const m of src.matchAll(/\b(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/g)) {
    out.push(m[1]);
  }
  for (const m of src.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) out.push(m[1]);
  return out;
}

/** Problems in one file, as "file: problem" lines. */
export function tidyProblems(path: string, src: string): string[] {
  const rel = relative(raftDir, path);
  const code = stripComments(src);
  const problems: string[] = [];
  if (!entryPoints.has(rel)) {
    for (const { pattern, why } of forbidden) {
      const m = code.match(pattern);
      if (m) problems.push(`${rel}: uses ${m[0]} (${why})`);
    }
  }
  for (const spec of importSpecifiers(code)) {
    if (!spec.startsWith(".")) {
      problems.push(`${rel}: imports ${spec} (only relative imports inside raft/)`);
      continue;
    }
    const target = resolve(dirname(path), spec);
    if (relative(raftDir, target).startsWith("..")) {
      problems.push(`${rel}: imports ${spec}, outside raft/`);
    }
  }
  return problems;
}

Deno.test("tidy: raft/ sources use no clock, timer, randomness, I/O, async or outside import", () => {
  const files = sourceFiles(raftDir);
  assert.ok(files.length >= 10, `found only ${files.length} source files`);
  const problems = files.flatMap((f) => tidyProblems(f, Deno.readTextFileSync(f)));
  assert.deepEqual(problems, []);
});

Deno.test("tidy: the scanner flags each forbidden use", () => {
  const p = join(raftDir, "x.ts");
  const cases = [
    "const t = Date.now();",
    "const t = performance.now();",
    "const r = Math.random();",
    "Deno.exit(1);",
    "setTimeout(() => {}, 1);",
    "export async function f() {}",
    'import { x } from "../src/x.ts";',
    'import { Hono } from "hono";',
    'fetch("http://x");',
  ];
  for (const c of cases) assert.notDeepEqual(tidyProblems(p, c), [], c);
  assert.deepEqual(tidyProblems(p, '// Date.now() is banned\nimport { a } from "./a.ts";'), []);
});
