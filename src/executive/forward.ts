/**
 * Forwarding of write requests from a follower to the leader: the same method, path, headers
 * and body, marked `X-Ctl-Forwarded: 1` so a request never bounces between followers.
 */
import { CtlError } from "../sor/errors.ts";

/** The header that marks a forwarded request. */
export const FORWARDED_HEADER = "x-ctl-forwarded";

/** How long a forwarded request may take before the client gets a 503. */
export const FORWARD_TIMEOUT_MS = 10_000;

const HOP_BY_HOP = new Set([
  "host",
  "connection",
  "content-length",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "proxy-connection",
]);

/** Sends `req` (whose body was already read into `body`) to `leaderUrl`; returns its response. */
export async function forwardToLeader(
  req: Request,
  body: Uint8Array<ArrayBuffer>,
  leaderUrl: string,
  fetchFn: typeof fetch,
): Promise<Response> {
  const source = new URL(req.url);
  const target = new URL(source.pathname + source.search, leaderUrl);
  const headers = new Headers();
  req.headers.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name.toLowerCase())) headers.set(name, value);
  });
  headers.set(FORWARDED_HEADER, "1");
  let res: Response;
  try {
    res = await fetchFn(target, {
      method: req.method,
      headers,
      body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
      redirect: "manual",
      signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
    });
  } catch (e) {
    throw new CtlError(
      "no_leader",
      `Cannot forward ${req.method} ${source.pathname} to the leader at ${leaderUrl}: ${
        (e as Error).message
      }`,
    );
  }
  const out = new Headers();
  res.headers.forEach((value, name) => {
    // fetch has already decoded the body, so its encoding and length headers no longer apply.
    const lower = name.toLowerCase();
    if (!HOP_BY_HOP.has(lower) && lower !== "content-encoding") out.set(name, value);
  });
  return new Response(res.body, { status: res.status, headers: out });
}
