/**
 * The sending end of a peer-port stream (`peer_listener.ts`): connects with Nagle off, writes the
 * hello, then every chunk of `body` as it is read (they are already `[u32][frame]` records), and
 * ends by closing its side once `body` ends.
 */

import { writeAll } from "../../util/write_all.ts";
import { closeOnAbort, connectAbortable } from "./abortable_connect.ts";
import { mark } from "../../util/timeline.ts";
import { lengthPrefixed } from "./frame_splitter.ts";
import { helloFrame } from "./peer_listener.ts";

/** How a peer-port stream ended. */
export type PeerStreamEnd =
  /** The body ended and the listener closed after reading it all. */
  | { ok: true }
  /**
   * The listener closed first: `error` is what it said (refused hello, stopped node, bad
   * frame), or null when it just went away. `connected` is false when no connection was made.
   */
  | { ok: false; connected: boolean; error: { code: string; message: string } | null };

const decoder = new TextDecoder();

/** Streams `body` to the peer port at `hostname:port`; `signal` closes the connection at once. */
export async function streamToPeerPort(
  hostname: string,
  port: number,
  secret: string,
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): Promise<PeerStreamEnd> {
  let conn: Deno.TcpConn;
  try {
    conn = await connectAbortable(hostname, port, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    return { ok: false, connected: false, error: null };
  }
  const reader = body.getReader();
  const unwatch = closeOnAbort(conn, reader, signal);
  // The listener writes only to refuse, then closes; its end stops the body pump.
  let ended = false;
  const farEnd = (async () => {
    let raw = "";
    const buf = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        raw += decoder.decode(buf.subarray(0, n), { stream: true });
      }
    } catch { /* reset, or closed here */ }
    ended = true;
    reader.cancel().catch(() => {});
    return parseRefusal(raw);
  })();
  // Set when `body` ran to its end; a read cancelled by farEnd reads as done too.
  let bodyDone = false;
  try {
    try {
      await writeAll(conn, lengthPrefixed(helloFrame(secret)));
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          bodyDone = !ended;
          break;
        }
        mark("wire");
        if (value.length > 0) await writeAll(conn, value);
      }
    } catch {
      // A write into a closed connection: the far end's words say why.
    }
    if (!ended && !signal.aborted) {
      try {
        await conn.closeWrite();
      } catch { /* already closed */ }
    }
    const error = await farEnd;
    if (signal.aborted) throw signal.reason ?? new Error("aborted");
    // A listener that closed after reading everything said nothing: a clean end, unless the
    // body was still open when it went.
    return error === null && bodyDone ? { ok: true } : { ok: false, connected: true, error };
  } finally {
    unwatch();
    try {
      reader.releaseLock();
    } catch { /* a read was still pending */ }
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

function parseRefusal(raw: string): { code: string; message: string } | null {
  const line = raw.split("\n")[0].trim();
  if (line === "") return null;
  try {
    const e = (JSON.parse(line) as { error?: { code?: unknown; message?: unknown } }).error;
    if (e && typeof e.code === "string") return { code: e.code, message: String(e.message) };
  } catch { /* not ours */ }
  return { code: "RAFT_STREAM_BROKEN", message: line.slice(0, 200) };
}
