/**
 * The peer port: the same frame streams as `POST {prefix}/stream`, on a plain TCP listener of
 * their own instead of inside an HTTP request body.
 *
 * Why: a frame read from a request body goes through the HTTP server's body channel before the
 * JavaScript sees it. A loopback ping-pong of small frames between two processes, 1 ms apart:
 * 90–99 µs round trip through `Deno.serve` bodies (BYOB reads) against 68–71 µs on plain sockets,
 * and p90 137–147 against 94–96 µs. Every write crosses two peer hops (the append, its
 * acknowledgement). etcd likewise keeps peers on a port of their own (2380).
 *
 * Protocol, after connecting: a hello frame, `[u32 bytes][UTF-8 JSON {"v":1,"secret":"…"}]` of
 * at most HELLO_BYTES_MAX bytes, then `[u32 bytes][frame]` records (`message_codec.ts`) until the
 * sender closes its side; the listener then closes too. A zero-length record just before the
 * end says the sender is replacing the stream and lives (`stayingAliveRecord`); a stream that
 * ends without one is reported (`onStreamEnd`). A refused hello, an oversized or
 * malformed frame, or a stopped node gets one JSON error line, `{"error":{"code","message"}}`,
 * and the connection closed. Nothing else is ever written back: acknowledgements travel on the
 * other member's own stream.
 */

import { getLogger } from "@logtape/logtape";
import type { Message, NodeId } from "../../../raft/types.ts";
import { CodecError } from "./message_codec.ts";
import { secretMatches } from "./peer_auth.ts";
import { InboundStream } from "./raft_handler.ts";
import { FrameSplitter, FrameTooLarge } from "./frame_splitter.ts";
import { writeAll } from "../../util/write_all.ts";

const logger = getLogger(["ctl", "raftnode", "transport"]);

/** Largest hello frame: the secret and a version. */
export const HELLO_BYTES_MAX = 4096;

/** A connection that has not said hello by then is closed. */
const HELLO_TIMEOUT_MS = 10_000;

/** The hello's protocol version. */
export const PEER_PROTOCOL_VERSION = 1;

/** Options of the peer port. */
export interface PeerListenerOptions {
  hostname: string;
  /** 0: any free port (see `port` once listening). */
  port: number;
  secret: string;
  /** Takes inbound messages; throws when the node cannot take them (see `deliverFrame`). */
  deliver(messages: Message[]): void;
  /**
   * A stream that carried messages from `from` ended without the sender saying it lives on
   * (`stayingAliveRecord`, sent when it replaces a stream): the sender died (a process killed
   * with -9 closes its sockets at once), stopped, or the connection broke. Not called once this
   * listener is closed.
   */
  onStreamEnd?(from: NodeId): void;
  /** Largest frame taken; default 64 MiB, as the HTTP route's body limit. */
  frameBytesMax?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A listening peer port. */
export class PeerListener {
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #done: Promise<void>;
  #closed = false;
  #accepted = 0;

  private constructor(listener: Deno.TcpListener, private readonly o: PeerListenerOptions) {
    this.#listener = listener;
    this.#done = this.#accept();
  }

  /** Listens; throws (Deno.errors.AddrInUse, …) when the address cannot be bound. */
  static listen(options: PeerListenerOptions): PeerListener {
    return new PeerListener(
      Deno.listen({ hostname: options.hostname, port: options.port, transport: "tcp" }),
      options,
    );
  }

  /** Connections accepted since listening. */
  get accepted(): number {
    return this.#accepted;
  }

  /** The bound port. */
  get port(): number {
    return this.#listener.addr.port;
  }

  async #accept(): Promise<void> {
    const serving = new Set<Promise<void>>();
    try {
      for await (const conn of this.#listener) {
        if (this.#closed) {
          conn.close();
          break;
        }
        conn.setNoDelay(true);
        this.#accepted++;
        this.#conns.add(conn);
        const s = this.#serve(conn).finally(() => {
          this.#conns.delete(conn);
          serving.delete(s);
        });
        serving.add(s);
      }
    } catch (err) {
      if (!this.#closed) {
        logger.warn("Peer port stopped accepting: {error}", { error: String(err) });
      }
    }
    await Promise.allSettled([...serving]);
  }

  async #serve(conn: Deno.TcpConn): Promise<void> {
    const frameBytesMax = this.o.frameBytesMax ?? 64 * 1024 * 1024;
    // The hello's own, smaller limit: a stray client (an HTTP request) is refused at once.
    const splitter = new FrameSplitter((i) => i === 0 ? HELLO_BYTES_MAX : frameBytesMax);
    const buf = new Uint8Array(64 * 1024);
    let hello = false;
    const inbound = new InboundStream(this.o.deliver);
    let dropped = 0;
    const helloTimer = setTimeout(() => {
      try {
        conn.close();
      } catch { /* already closed */ }
    }, HELLO_TIMEOUT_MS);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break; // the sender ended its stream
        for (const frame of splitter.push(buf.subarray(0, n))) {
          if (!hello) {
            const refused = checkHello(frame, this.o.secret);
            if (refused !== null) return await refuse(conn, refused.code, refused.message);
            hello = true;
            clearTimeout(helloTimer);
            continue;
          }
          const outcome = inbound.take(frame);
          if (outcome === "stopped") {
            return await refuse(conn, "RAFT_UNAVAILABLE", "Node is stopped");
          }
          dropped += outcome;
        }
      }
    } catch (err) {
      if (err instanceof FrameTooLarge) {
        return err.frameIndex > 0
          ? await refuse(conn, "RAFT_BODY_TOO_LARGE", err.message)
          : await refuse(conn, "RAFT_BAD_HELLO", "Not a ctl peer stream");
      }
      if (err instanceof CodecError) return await refuse(conn, err.code, err.message);
      // A reset or a close() from stop(): the stream is over either way.
      if (!this.#closed) logger.debug("Peer stream broke: {error}", { error: String(err) });
    } finally {
      clearTimeout(helloTimer);
      if (dropped > 0) logger.warn("Dropped {dropped} streamed messages", { dropped });
      if (inbound.sender !== null && !this.#closed) this.o.onStreamEnd?.(inbound.sender);
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  }

  /** Stops listening and ends every stream. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
    await this.#done;
  }
}

/** Why a hello is refused, or null when it is a good one. */
function checkHello(frame: Uint8Array, secret: string): { code: string; message: string } | null {
  let hello: unknown;
  try {
    hello = JSON.parse(decoder.decode(frame));
  } catch {
    return { code: "RAFT_BAD_HELLO", message: "The hello is not JSON" };
  }
  const h = hello as { v?: unknown; secret?: unknown };
  if (typeof hello !== "object" || hello === null || h.v !== PEER_PROTOCOL_VERSION) {
    return {
      code: "RAFT_BAD_HELLO",
      message: `Unknown peer protocol version ${JSON.stringify(h?.v)}`,
    };
  }
  if (typeof h.secret !== "string" || !secretMatches(h.secret, secret)) {
    return { code: "RAFT_UNAUTHORIZED", message: "Peer stream without the cluster secret" };
  }
  return null;
}

async function refuse(conn: Deno.TcpConn, code: string, message: string): Promise<void> {
  try {
    await writeAll(conn, encoder.encode(JSON.stringify({ error: { code, message } }) + "\n"));
  } catch { /* the sender is gone */ }
}

/** The hello a sender writes first. */
export function helloFrame(secret: string): Uint8Array {
  return encoder.encode(JSON.stringify({ v: PEER_PROTOCOL_VERSION, secret }));
}
