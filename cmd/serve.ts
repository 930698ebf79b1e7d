/** What every long-running subcommand shares: parsing `host:port`, serving until a signal. */
import { UsageError } from "./cli.ts";

/** Parses `host:port` (`[::1]:7001`, `:7001` = all interfaces). */
export function parseListen(text: string): { hostname: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65_535) {
    throw new UsageError(`"${text}" is not host:port (example: 127.0.0.1:1331)`);
  }
  return { hostname: m[1].replace(/^\[|\]$/g, "") || "0.0.0.0", port };
}

/** Resolves on the first SIGINT or SIGTERM; the listeners are removed afterwards. */
export function untilSignal(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const handlers = signals.map((sig) => {
      const h = () => {
        signals.forEach((s, i) => Deno.removeSignalListener(s, handlers[i]));
        resolve(sig);
      };
      Deno.addSignalListener(sig, h);
      return h;
    });
  });
}
