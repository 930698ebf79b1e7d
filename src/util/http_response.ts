/**
 * Parses an HTTP/1.x response read off a raw connection: the peer-stream client
 * (`src/raftnode/transport/tcp_post.ts`) and the benchmark's load generator speak HTTP/1.1 over
 * `Deno.connect` themselves, and both read answers with this.
 */

/** A complete (or, at EOF, the whole available) response. */
export interface HttpResponse {
  status: number;
  /** The body as UTF-8 text; chunked bodies are joined. */
  body: string;
  /** The server said `connection: close`: the connection cannot carry another request. */
  close: boolean;
}

const decoder = new TextDecoder();

/** Index of the first CRLF at or after `from`, or -1. */
function crlf(raw: Uint8Array, from: number): number {
  for (let i = from; i + 1 < raw.length; i++) if (raw[i] === 13 && raw[i + 1] === 10) return i;
  return -1;
}

function join(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The response in `raw`: status and body by content-length, chunked encoding, or (with neither)
 * up to EOF; 1xx, 204 and 304 answers have no body. Returns null while `raw` holds less than a
 * complete response and the connection is open (`atEof` false); at EOF returns what arrived.
 * Lengths and chunk sizes count bytes. Throws on a bad status line, or at EOF without a head.
 */
export function parseHttpResponse(raw: Uint8Array, atEof = true): HttpResponse | null {
  let headEnd = -1;
  for (let at = crlf(raw, 0); at >= 0; at = crlf(raw, at + 2)) {
    if (raw[at + 2] === 13 && raw[at + 3] === 10) {
      headEnd = at;
      break;
    }
  }
  if (headEnd < 0) {
    if (!atEof) return null;
    throw new Error("Peer closed the stream without a complete HTTP response");
  }
  const [statusLine, ...headerLines] = decoder.decode(raw.subarray(0, headEnd)).split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) throw new Error(`Peer answered with a bad status line: ${statusLine.slice(0, 80)}`);
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    const i = line.indexOf(":");
    headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  const status = Number(m[1]);
  const close = headers.get("connection")?.toLowerCase() === "close";
  const done = (body: Uint8Array) => ({ status, body: decoder.decode(body), close });
  const rest = raw.subarray(headEnd + 4);
  if (status < 200 || status === 204 || status === 304) return done(rest.subarray(0, 0));
  if (headers.get("transfer-encoding")?.toLowerCase() === "chunked") {
    const parts: Uint8Array[] = [];
    for (let at = 0;;) {
      const eol = crlf(rest, at);
      if (eol < 0) break;
      const size = parseInt(decoder.decode(rest.subarray(at, eol)), 16);
      if (size === 0) return done(join(parts));
      if (!(size > 0) || eol + 2 + size > rest.length) break;
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    return atEof ? done(join(parts)) : null;
  }
  if (headers.has("content-length")) {
    const length = Number(headers.get("content-length"));
    if (rest.length >= length) return done(rest.subarray(0, length));
    return atEof ? done(rest) : null;
  }
  return atEof ? done(rest) : null;
}
