/**
 * A streaming HTTP/1.1 POST written straight onto a TCP connection with Nagle's algorithm off.
 *
 * Why not `fetch`: Deno's fetch client leaves Nagle on (TCP_NODELAY = 0), so a small frame
 * written while an earlier one is still unacknowledged waits for the peer's delayed ACK — up to
 * 40 ms on Linux. Peer streams carry exactly that traffic (small appends and acknowledgements in
 * both directions, back to back), and the stall showed as a 40 ms p99 on every commit. The far
 * end is the same `Deno.serve` route; it sees an ordinary chunked request.
 */

import { parseHttpResponse } from "../../util/http_response.ts";
import { writeAll } from "../../util/write_all.ts";
import { closeOnAbort, connectAbortable } from "./abortable_connect.ts";
import { mark } from "../../util/timeline.ts";

/** The answer to a streamed POST. */
export interface TcpPostResult {
  status: number;
  body: string;
}

const CRLF = "\r\n";
const encoder = new TextEncoder();

function chunkFrame(chunk: Uint8Array): Uint8Array {
  const head = encoder.encode(chunk.length.toString(16) + CRLF);
  const out = new Uint8Array(head.length + chunk.length + 2);
  out.set(head, 0);
  out.set(chunk, head.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/**
 * Parses a response: the status line and the body (content-length, chunked, or up to EOF).
 * Returns null while `raw` holds less than a complete response and the connection is open.
 */
export function parseResponse(raw: Uint8Array, atEof = true): TcpPostResult | null {
  const r = parseHttpResponse(raw, atEof);
  return r === null ? null : { status: r.status, body: r.body };
}

/**
 * POSTs `body` to `url` (http: only) as a chunked stream, each chunk written as soon as it is
 * read, and resolves with the answer once the server has read the whole body and replied.
 * `signal` closes the connection at once.
 */
export async function tcpPost(
  url: URL,
  headers: Record<string, string>,
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): Promise<TcpPostResult> {
  if (url.protocol !== "http:") throw new Error(`tcpPost speaks plain http, not ${url.protocol}`);
  const conn = await connectAbortable(
    url.hostname.replace(/^\[|\]$/g, ""),
    Number(url.port || 80),
    signal,
  );
  const reader = body.getReader();
  const unwatch = closeOnAbort(conn, reader, signal);
  try {
    const head = [
      `POST ${url.pathname}${url.search} HTTP/1.1`,
      `host: ${url.host}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      "transfer-encoding: chunked",
      "connection: close",
      "",
      "",
    ].join(CRLF);
    await writeAll(conn, encoder.encode(head));
    // The answer is read alongside: a server may reply (and close) before the body ends.
    const answer = (async (): Promise<TcpPostResult> => {
      let raw = new Uint8Array(0);
      const buf = new Uint8Array(16 * 1024);
      for (;;) {
        const n = await conn.read(buf);
        if (n !== null) {
          const grown = new Uint8Array(raw.length + n);
          grown.set(raw, 0);
          grown.set(buf.subarray(0, n), raw.length);
          raw = grown;
        }
        // A refusing server may keep the connection open: a complete answer is enough.
        const parsed = parseResponse(raw, n === null);
        if (parsed !== null) return parsed;
      }
    })();
    // A server that answers before the body ends (a refusal) closes the connection: stop
    // waiting for more body then.
    answer.then(() => reader.cancel(), () => reader.cancel()).catch(() => {});
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        mark("wire");
        if (value.length > 0) await writeAll(conn, chunkFrame(value));
      }
      await writeAll(conn, encoder.encode("0" + CRLF + CRLF));
    } catch (err) {
      // The server answered and closed early: its answer says why.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const early = await Promise.race([
        answer,
        new Promise<null>((r) => (timer = setTimeout(r, 100, null))),
      ]).catch(() => null).finally(() => clearTimeout(timer));
      if (early !== null) return early;
      throw err;
    }
    return await answer;
  } finally {
    unwatch();
    try {
      reader.releaseLock();
    } catch { /* a read was still pending: the stream was cancelled */ }
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}
