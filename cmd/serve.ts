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

/** The `--listen` flag of components whose only HTTP surface is `/metrics`. */
export const METRICS_LISTEN_FLAG = {
  name: "listen",
  type: "string",
  help: "serve Prometheus /metrics on host:port",
  placeholder: "HOST:PORT",
} as const;

/** Serves `GET /metrics` from `registry` until `signal` aborts; undefined without an address. */
export function serveMetrics(
  listen: string | undefined,
  registry: { metrics(): Promise<string>; contentType: string },
  signal: AbortSignal,
): Deno.HttpServer | undefined {
  if (!listen) return undefined;
  return Deno.serve({ ...parseListen(listen), signal, onListen: () => {} }, async (req) => {
    if (new URL(req.url).pathname !== "/metrics") {
      return Response.json({ error: { code: "not_found", message: "only /metrics" } }, {
        status: 404,
      });
    }
    return new Response(await registry.metrics(), {
      headers: { "content-type": registry.contentType },
    });
  });
}
