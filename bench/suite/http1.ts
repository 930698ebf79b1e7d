/**
 * How the load generator POSTs: a `Poster` per client. Two kinds, both keep-alive HTTP/1.1:
 *
 * - `RawPoster` (the default): one connection written and read directly. On this 2-core machine
 *   the load generator shares the CPU with the cluster it measures; `fetch` costs the generator
 *   about 35 µs per request against a trivial server, this about 10 (`deno task bench --client
 *   fetch` compares). A client on its own machine would cost the cluster nothing, so the cheaper
 *   generator measures the servers more truly — ctl and etcd alike, as both get the same one.
 * - `FetchPoster`: `fetch` over a shared `Deno.HttpClient` (many requests at once).
 */
import { parseHttpResponse } from "../../src/util/http_response.ts";
import { concatBytes } from "../../src/util/bytes.ts";
import { writeAll } from "../../src/util/write_all.ts";

/** An answer: status and body text. */
export interface Answer {
  status: number;
  text: string;
}

/** Sends POSTs; a RawPoster one at a time, a FetchPoster any number at once. */
export interface Poster {
  post(
    url: string,
    headers: Record<string, string>,
    body: string,
    signal?: AbortSignal,
  ): Promise<Answer>;
  close(): void;
}

/** `fetch` over `client` (not closed by `close`: the caller owns it). */
export class FetchPoster implements Poster {
  constructor(private readonly client: Deno.HttpClient) {}

  async post(
    url: string,
    headers: Record<string, string>,
    body: string,
    signal?: AbortSignal,
  ): Promise<Answer> {
    const res = await fetch(url, { method: "POST", headers, body, client: this.client, signal });
    return { status: res.status, text: await res.text() };
  }

  close(): void {}
}

const encoder = new TextEncoder();

/**
 * One keep-alive connection per origin, one request at a time. Reconnects after an error or a
 * `connection: close`. Understands content-length and chunked answers.
 */
export class RawPoster implements Poster {
  private conn: Deno.TcpConn | null = null;
  private origin = "";
  private buf = new Uint8Array(64 * 1024);
  private busy = false;

  async post(
    url: string,
    headers: Record<string, string>,
    body: string,
    signal?: AbortSignal,
  ): Promise<Answer> {
    if (this.busy) throw new Error("RawPoster: one request at a time");
    this.busy = true;
    const u = new URL(url);
    const onAbort = () => this.drop();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      signal?.throwIfAborted();
      if (this.conn === null || this.origin !== u.origin) {
        this.drop();
        this.conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port || 80) });
        this.conn.setNoDelay(true);
        this.origin = u.origin;
      }
      const payload = encoder.encode(body);
      let head = `POST ${u.pathname}${u.search} HTTP/1.1\r\nhost: ${u.host}\r\n`;
      for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
      head += `content-length: ${payload.length}\r\n\r\n`;
      await writeAll(this.conn, concatBytes([encoder.encode(head), payload]));
      const answer = await this.readAnswer(this.conn);
      signal?.throwIfAborted();
      return answer;
    } catch (e) {
      this.drop();
      throw e;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.busy = false;
    }
  }

  private async readAnswer(conn: Deno.TcpConn): Promise<Answer> {
    let have = 0;
    for (;;) {
      if (have === this.buf.length) {
        const grown = new Uint8Array(this.buf.length * 2);
        grown.set(this.buf);
        this.buf = grown;
      }
      const n = await conn.read(this.buf.subarray(have));
      if (n === null) throw new Error("connection closed before a complete answer");
      have += n;
      const parsed = parseAnswer(this.buf.subarray(0, have));
      if (parsed === null) continue;
      if (parsed.close) this.drop();
      return parsed.answer;
    }
  }

  private drop(): void {
    try {
      this.conn?.close();
    } catch { /* already closed */ }
    this.conn = null;
  }

  close(): void {
    this.drop();
  }
}

/** A complete answer in `raw`, or null while more bytes are needed. */
export function parseAnswer(raw: Uint8Array): { answer: Answer; close: boolean } | null {
  const r = parseHttpResponse(raw, false);
  return r === null ? null : { answer: { status: r.status, text: r.body }, close: r.close };
}
