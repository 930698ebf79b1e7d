/** Reading a Prometheus text exposition (`GET /metrics`) in the benches. */

/** Sums every line of a counter/gauge/histogram series by name (labels ignored). */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name + " ") || line.startsWith(name + "{")) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}
