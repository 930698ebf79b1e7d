/**
 * Medians across several `bench/run.ts` result files: for each figure, the median over the runs
 * of its median, p99, etcd median and ctl/etcd ratio, and how many runs met its target.
 *
 *   deno run -A bench/suite/summarize.ts bench/results/2026-…json bench/results/2026-…json …
 *   deno run -A bench/suite/summarize.ts --markdown FILE…   (a Markdown table instead)
 */
import Table from "cli-table3";
import { fmt, median } from "./stats.ts";

interface Row {
  name: string;
  unit: string;
  median: number | null;
  p99: number | null;
  etcd?: { median: number | null } | null;
  ratio: number | null;
  status: "met" | "missed" | null;
  target?: { text: string };
}

const num = (xs: (number | null | undefined)[]) =>
  xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x));

export function summarize(files: string[]) {
  const byName = new Map<string, Row[]>();
  for (const f of files) {
    const report = JSON.parse(Deno.readTextFileSync(f)) as { results: Row[] };
    for (const r of report.results) {
      if (!byName.has(r.name)) byName.set(r.name, []);
      byName.get(r.name)!.push(r);
    }
  }
  return [...byName].map(([name, rows]) => {
    const m = (xs: (number | null | undefined)[]) => {
      const v = num(xs);
      return v.length ? median(v) : undefined;
    };
    const met = rows.filter((r) => r.status === "met").length;
    const judged = rows.filter((r) => r.status !== null).length;
    return {
      name,
      unit: rows[0].unit,
      runs: rows.length,
      median: m(rows.map((r) => r.median)),
      p99: m(rows.map((r) => r.p99)),
      etcdMedian: m(rows.map((r) => r.etcd?.median)),
      ratio: m(rows.map((r) => r.ratio)),
      target: rows[0].target?.text ?? "",
      met: judged ? `${met}/${judged} met` : "",
    };
  });
}

if (import.meta.main) {
  const markdown = Deno.args[0] === "--markdown";
  const files = markdown ? Deno.args.slice(1) : Deno.args;
  if (files.length === 0) {
    console.error("Error: no result files\nTry: deno run -A bench/suite/summarize.ts FILE…");
    Deno.exit(2);
  }
  const rows = summarize(files);
  const head = ["figure", "unit", "runs", "ctl median", "ctl p99", "etcd median", "ctl/etcd"];
  head.push("target", "status");
  const cells = rows.map((r) => [
    r.name,
    r.unit,
    String(r.runs),
    fmt(r.median),
    fmt(r.p99),
    fmt(r.etcdMedian),
    r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}×`,
    r.target,
    r.met,
  ]);
  if (markdown) {
    console.log(`| ${head.join(" | ")} |`);
    console.log(`|${head.map(() => "---").join("|")}|`);
    for (const c of cells) console.log(`| ${c.join(" | ")} |`);
  } else {
    const table = new Table({ head, style: { head: [], border: [] } });
    for (const c of cells) table.push(c);
    console.log(table.toString());
  }
}
