/**
 * Outbound peer traffic.
 *
 * Default ("stream" mode): one long-lived POST per peer (`{prefix}/stream`) whose body is a
 * stream of length-prefixed frames, one frame per `send()` call (one per Ready: the batch).
 * Frames go out as soon as they are written, in order, without waiting for any answer: sending
 * is pipelined, and costs no HTTP request per batch. The stream's buffer is bounded; when it is
 * full (the peer is slow or gone) messages are dropped and the peer reported unreachable, as
 * when the stream fails (Raft retransmits). The next send opens a new stream. A plain-http peer
 * with a peer port (`GET {prefix}/peer-port`, `peer_listener.ts`) gets the same frames there, on
 * plain TCP, instead of in an HTTP request body.
 *
 * "request" mode: one POST per batch to `{prefix}/msgs`, one request in flight per peer,
 * whatever accumulated meanwhile going out as the next batch (bounded queue).
 *
 * Snapshot chunks (MsgSnap, cut by the core and acknowledged chunk by chunk) go as separate
 * requests to `{prefix}/snap`, so a large chunk never holds up heartbeats and appends.
 */

import { getLogger } from "@logtape/logtape";
import type { Message, NodeId } from "../../../raft/types.ts";
import { encodeMessages } from "./message_codec.ts";
import { SECRET_HEADER } from "./peer_auth.ts";
import { tcpPost, type TcpPostResult } from "./tcp_post.ts";
import { lengthPrefixed, stayingAliveRecord } from "./frame_splitter.ts";
import { streamToPeerPort } from "./peer_stream_client.ts";

const logger = getLogger(["ctl", "raftnode", "transport"]);

/** Options of the outbound transport. */
export interface PeerTransportOptions {
  secret: string;
  /** Path prefix the peers mount their handler under; default "/raft". */
  pathPrefix?: string;
  /** Messages queued per peer before new ones are dropped; default 8192. */
  queueMessagesMax?: number;
  /** Messages per request; default 4096. */
  batchMessagesMax?: number;
  /** Approximate bytes per request; default 4 MiB. */
  batchBytesMax?: number;
  /** Per-request timeout; default 5000 ms. */
  requestTimeoutMs?: number;
  /** "stream" (default) or "request"; see the module comment. */
  mode?: "stream" | "request";
  /** Bytes buffered per peer stream before messages are dropped; default 8 MiB. */
  streamBufferBytes?: number;
  /** A stream is replaced by a fresh one after this long; default 5000 ms. */
  streamMaxAgeMs?: number;
  /**
   * Stream to a peer's peer port (`peer_listener.ts`) when it has one, asked for on
   * `GET {prefix}/peer-port`; default true. Only for plain http peers: https stays on HTTP.
   */
  usePeerPort?: boolean;
  /** Called when messages to a peer were dropped (queue full or request failed). */
  onUnreachable?(peer: NodeId): void;
  /** Called when a snapshot chunk could not be delivered. */
  onSnapshotStatus?(peer: NodeId, ok: boolean): void;
}

interface Peer {
  id: NodeId;
  url: string;
  queue: Message[];
  sending: boolean;
  snapshots: Message[];
  sendingSnapshot: boolean;
  stream: PeerStream | null;
  /** Messages held back by `hold()`, sent in front of the next messages to this peer. */
  held: Message[];
  heldTimer: ReturnType<typeof setTimeout> | undefined;
  /** The peer's peer port: undefined until asked, null when it has none (HTTP streams). */
  peerPort: number | null | undefined;
  /** When `peerPort` was last learned (`performance.now()`). */
  peerPortAskedAtMs: number;
}

interface PeerStream {
  controller: ReadableStreamDefaultController<Uint8Array>;
  abort: AbortController;
  /** Last time the stream's buffer was (nearly) empty: the network is taking what we write. */
  drainedAtMs: number;
  openedAtMs: number;
  /** Closed by rotation, not by failure: its end is not reported as the peer unreachable. */
  rotated: boolean;
  /** After rotation: aborts the request if the far end never finishes it. */
  abortTimer?: ReturnType<typeof setTimeout>;
}

/**
 * Streams are replaced after this long (default of `streamMaxAgeMs`). A connection whose far end
 * vanished unseen (a process killed behind a proxy or a partition) can swallow small writes for
 * minutes; a bounded life guarantees that messages reach a restarted peer again within this time.
 * A replaced stream ends with `stayingAliveRecord()`, so the peer knows its sender lives.
 */
export const STREAM_MAX_AGE_MS = 5_000;

/** A peer without a peer port is asked again after this long (it may have been upgraded). */
const PEER_PORT_RECHECK_MS = 60_000;

/** Buffered bytes below which a stream counts as drained. */
const STREAM_DRAINED_BYTES = 64 * 1024;

/** Sends messages to peers. */
export class PeerTransport {
  private readonly peers = new Map<NodeId, Peer>();
  private closed = false;
  private readonly prefix: string;
  private readonly queueMessagesMax: number;
  private readonly batchMessagesMax: number;
  private readonly batchBytesMax: number;
  private readonly timeoutMs: number;
  private readonly mode: "stream" | "request";
  private readonly streamBufferBytes: number;
  private readonly streamMaxAgeMs: number;
  private readonly inflight = new Set<Promise<void>>();
  /** Requests in flight with their start time; a watchdog aborts those past the timeout. */
  private readonly requests = new Map<AbortController, number>();
  private watchdog: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: PeerTransportOptions) {
    this.prefix = options.pathPrefix ?? "/raft";
    this.queueMessagesMax = options.queueMessagesMax ?? 8192;
    this.batchMessagesMax = options.batchMessagesMax ?? 4096;
    this.batchBytesMax = options.batchBytesMax ?? 4 * 1024 * 1024;
    this.timeoutMs = options.requestTimeoutMs ?? 5000;
    this.mode = options.mode ?? "stream";
    this.streamBufferBytes = options.streamBufferBytes ?? 8 * 1024 * 1024;
    this.streamMaxAgeMs = options.streamMaxAgeMs ?? STREAM_MAX_AGE_MS;
  }

  /** Adds or updates a peer's base URL (e.g. "http://127.0.0.1:7001"). */
  setPeer(id: NodeId, url: string): void {
    const base = url.replace(/\/+$/, "");
    const peer = this.peers.get(id);
    if (peer) {
      if (peer.url !== base) {
        peer.stream?.abort.abort();
        peer.peerPort = undefined;
      }
      peer.url = base;
    } else {
      this.peers.set(id, {
        id,
        url: base,
        queue: [],
        sending: false,
        snapshots: [],
        sendingSnapshot: false,
        stream: null,
        held: [],
        heldTimer: undefined,
        peerPort: undefined,
        peerPortAskedAtMs: 0,
      });
    }
  }

  /** Forgets a peer; queued messages to it are dropped. */
  removePeer(id: NodeId): void {
    const peer = this.peers.get(id);
    peer?.stream?.abort.abort();
    clearTimeout(peer?.heldTimer);
    this.peers.delete(id);
  }

  /** The known peer URLs. */
  peerUrls(): Map<NodeId, string> {
    return new Map([...this.peers.values()].map((p) => [p.id, p.url]));
  }

  /**
   * Sends messages later: each waits until the next `send` to its peer, which carries it in
   * front of its own messages (one frame, order kept), or at most `maxMs`. For messages that
   * need not travel alone: one socket write wakes the peer instead of two.
   */
  hold(messages: readonly Message[], maxMs: number): void {
    if (this.closed) return;
    for (const m of messages) {
      const peer = this.peers.get(m.to);
      if (peer === undefined) {
        this.options.onUnreachable?.(m.to);
        continue;
      }
      peer.held.push(m);
      peer.heldTimer ??= setTimeout(() => {
        peer.heldTimer = undefined;
        if (this.peers.get(peer.id) === peer && this.takeHeld(peer)) this.flush(peer);
      }, maxMs);
    }
  }

  /** Queues messages; never blocks. Messages to unknown peers are dropped and reported. */
  send(messages: readonly Message[]): void {
    if (this.closed) return;
    const touched = new Set<Peer>();
    for (const m of messages) {
      const peer = this.peers.get(m.to);
      if (peer === undefined) {
        this.options.onUnreachable?.(m.to);
        continue;
      }
      if (peer.held.length > 0 && !touched.has(peer) && this.takeHeld(peer)) touched.add(peer);
      if (m.type === "MsgSnap") {
        // The core sends the next chunk only after the previous one was acknowledged.
        if (peer.snapshots.length >= 16) {
          this.options.onUnreachable?.(peer.id);
          continue;
        }
        peer.snapshots.push(m);
        this.pumpSnapshots(peer);
        continue;
      }
      if (peer.queue.length >= this.queueMessagesMax) {
        this.options.onUnreachable?.(peer.id);
        continue;
      }
      peer.queue.push(m);
      touched.add(peer);
    }
    for (const peer of touched) this.flush(peer);
  }

  /** Moves a peer's held messages to the front of its queue; false when the queue is full. */
  private takeHeld(peer: Peer): boolean {
    clearTimeout(peer.heldTimer);
    peer.heldTimer = undefined;
    const held = peer.held.splice(0);
    if (peer.queue.length + held.length > this.queueMessagesMax) {
      this.options.onUnreachable?.(peer.id);
      return false;
    }
    // Anything already queued is older (a send after the hold would have taken them), anything
    // the caller queues next is newer.
    peer.queue.push(...held);
    return true;
  }

  private flush(peer: Peer): void {
    if (this.mode === "stream") this.writeStream(peer, peer.queue.splice(0));
    else this.pump(peer);
  }

  private writeStream(peer: Peer, messages: Message[]): void {
    const stream = peer.stream ?? this.openStream(peer);
    const bufferedBytes = this.streamBufferBytes - (stream.controller.desiredSize ?? 0);
    if (bufferedBytes < STREAM_DRAINED_BYTES) stream.drainedAtMs = performance.now();
    if ((stream.controller.desiredSize ?? 0) <= 0) {
      this.options.onUnreachable?.(peer.id);
      return;
    }
    stream.controller.enqueue(lengthPrefixed(encodeMessages(messages)));
  }

  /**
   * Drops the stream to `id`, if any, so that the next send opens a fresh connection. For a peer
   * that has gone silent: a connection whose far end died unseen (a restart behind a partition
   * that swallowed the reset) can accept small writes for minutes without delivering them.
   */
  resetStream(id: NodeId): void {
    const stream = this.peers.get(id)?.stream;
    if (stream) stream.abort.abort();
  }

  private openStream(peer: Peer): PeerStream {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>(
      { start: (c) => void (controller = c) },
      new ByteLengthQueuingStrategy({ highWaterMark: this.streamBufferBytes }),
    );
    const stream: PeerStream = {
      controller,
      abort: new AbortController(),
      drainedAtMs: performance.now(),
      openedAtMs: performance.now(),
      rotated: false,
    };
    peer.stream = stream;
    this.startWatchdog();
    const url = new URL(`${peer.url}${this.prefix}/stream`);
    const headers = {
      [SECRET_HEADER]: this.options.secret,
      "content-type": "application/octet-stream",
    };
    // Plain http goes to the peer port, or over our own TCP connection with Nagle off (see
    // tcp_post.ts); https through fetch.
    const answer = url.protocol === "http:"
      ? this.streamPlain(peer, url, headers, body, stream.abort.signal)
      : fetch(url, { method: "POST", headers, body, signal: stream.abort.signal })
        .then(async (res) => ({ status: res.status, body: await res.text() }));
    const run = answer.then(({ status, body: text }) => {
      if (status < 200 || status > 299) {
        logger.warn("Peer {peer} ended the stream with {status}: {text}", {
          peer: peer.id,
          status,
          text,
        });
      }
    }).catch((err) => {
      if (!this.closed) {
        logger.debug("Stream to peer {peer} failed: {error}", {
          peer: peer.id,
          error: String(err),
        });
      }
    }).finally(() => {
      clearTimeout(stream.abortTimer);
      if (peer.stream === stream) peer.stream = null;
      try {
        controller.error(new Error("stream closed"));
      } catch { /* already closed */ }
      this.inflight.delete(run);
      if (!this.closed && !stream.rotated) this.options.onUnreachable?.(peer.id);
    });
    this.inflight.add(run);
    return stream;
  }

  /** A plain-http peer's stream: to its peer port when it has one, else as a chunked POST. */
  private async streamPlain(
    peer: Peer,
    url: URL,
    headers: Record<string, string>,
    body: ReadableStream<Uint8Array>,
    signal: AbortSignal,
  ): Promise<TcpPostResult> {
    const port = this.options.usePeerPort === false ? null : await this.peerPortOf(peer, signal);
    if (port === null) return await tcpPost(url, headers, body, signal);
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    const end = await streamToPeerPort(hostname, port, this.options.secret, body, signal);
    if (end.ok) return { status: 204, body: "" };
    // Asked again for the next stream: the member may have restarted on another port.
    if (peer.peerPort === port) peer.peerPort = undefined;
    if (end.error === null) {
      throw new Error(
        end.connected
          ? `${peer.id}'s peer port ${port} closed the stream`
          : `Cannot connect to ${peer.id}'s peer port ${port}`,
      );
    }
    const status = end.error.code === "RAFT_UNAUTHORIZED" ? 401 : 503;
    return { status, body: JSON.stringify({ error: end.error }) };
  }

  /** The peer's peer port, asked for when not known; null when it has none. */
  private async peerPortOf(peer: Peer, signal: AbortSignal): Promise<number | null> {
    const known = peer.peerPort;
    if (known !== undefined) {
      if (known !== null) return known;
      if (performance.now() - peer.peerPortAskedAtMs < PEER_PORT_RECHECK_MS) return null;
    }
    const asked = peer.url;
    const res = await fetch(`${asked}${this.prefix}/peer-port`, {
      headers: { [SECRET_HEADER]: this.options.secret },
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
    });
    let port: number | null;
    if (res.status === 404) {
      await res.body?.cancel();
      port = null;
    } else if (!res.ok) {
      throw new Error(`${peer.id} answered ${res.status} to ${this.prefix}/peer-port: ${await res
        .text()}`);
    } else {
      const answer = (await res.json()) as { port?: unknown };
      const p = answer.port;
      if (typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > 65_535) {
        throw new Error(`${peer.id} answered a bad peer port: ${JSON.stringify(answer)}`);
      }
      port = p;
    }
    if (peer.url === asked) {
      peer.peerPort = port;
      peer.peerPortAskedAtMs = performance.now();
    }
    return port;
  }

  private pump(peer: Peer): void {
    if (peer.sending || peer.queue.length === 0 || this.closed) return;
    peer.sending = true;
    const batch = this.takeBatch(peer);
    const run = this.post(peer, "/msgs", encodeMessages(batch)).then((ok) => {
      if (!ok) this.options.onUnreachable?.(peer.id);
    }).finally(() => {
      peer.sending = false;
      this.inflight.delete(run);
      if (this.peers.get(peer.id) === peer) this.pump(peer);
    });
    this.inflight.add(run);
  }

  private takeBatch(peer: Peer): Message[] {
    let bytes = 0;
    let n = 0;
    while (n < peer.queue.length && n < this.batchMessagesMax && bytes < this.batchBytesMax) {
      bytes += approxBytes(peer.queue[n]);
      n++;
    }
    return peer.queue.splice(0, n);
  }

  private pumpSnapshots(peer: Peer): void {
    if (peer.sendingSnapshot || peer.snapshots.length === 0 || this.closed) return;
    peer.sendingSnapshot = true;
    const snap = peer.snapshots.shift()!;
    const run = this.sendSnapshot(peer, snap).then((ok) => {
      if (!ok) {
        this.options.onSnapshotStatus?.(peer.id, false);
        this.options.onUnreachable?.(peer.id);
      }
    }).finally(() => {
      peer.sendingSnapshot = false;
      this.inflight.delete(run);
      this.pumpSnapshots(peer);
    });
    this.inflight.add(run);
  }

  private async sendSnapshot(peer: Peer, m: Message): Promise<boolean> {
    const ok = await this.post(peer, "/snap", encodeMessages([m]));
    if (ok && m.snapshotDone) {
      logger.info("Sent the last chunk of snapshot {index} to {peer}", {
        index: m.snapshot?.index,
        peer: peer.id,
      });
    }
    return ok;
  }

  /**
   * Registers a request for the watchdog. One interval timer for all requests: a timer or
   * AbortSignal.any per request showed up in profiles at thousands of requests per second.
   */
  private track(controller: AbortController): AbortSignal {
    this.requests.set(controller, performance.now());
    this.startWatchdog();
    return controller.signal;
  }

  /**
   * Aborts requests past their timeout, and streams whose buffer has not drained within it (a
   * peer that vanished without closing the connection): the next send opens a fresh stream.
   */
  private startWatchdog(): void {
    this.watchdog ??= setInterval(() => {
      const now = performance.now();
      for (const [c, startedMs] of this.requests) {
        if (now - startedMs > this.timeoutMs) {
          this.requests.delete(c);
          c.abort(new Error(`Peer request timed out after ${this.timeoutMs} ms`));
        }
      }
      for (const peer of this.peers.values()) {
        const stream = peer.stream;
        if (stream === null) continue;
        const bufferedBytes = this.streamBufferBytes - (stream.controller.desiredSize ?? 0);
        if (now - stream.openedAtMs > this.streamMaxAgeMs) {
          // Graceful: what is buffered still goes out; the next send opens a fresh stream. A
          // dead connection that never finishes is aborted after the request timeout.
          stream.rotated = true;
          peer.stream = null;
          try {
            stream.controller.enqueue(stayingAliveRecord());
            stream.controller.close();
          } catch { /* already closed */ }
          stream.abortTimer = setTimeout(() => stream.abort.abort(), this.timeoutMs);
          continue;
        }
        if (bufferedBytes < STREAM_DRAINED_BYTES) stream.drainedAtMs = now;
        else if (now - stream.drainedAtMs > this.timeoutMs) {
          logger.warn("Stream to peer {peer} stalled with {bytes} bytes buffered; reopening", {
            peer: peer.id,
            bytes: bufferedBytes,
          });
          stream.abort.abort();
        }
      }
    }, Math.max(50, Math.min(1000, this.timeoutMs / 4)));
  }

  private async post(peer: Peer, route: string, body: Uint8Array<ArrayBuffer>): Promise<boolean> {
    const controller = new AbortController();
    try {
      const res = await fetch(`${peer.url}${this.prefix}${route}`, {
        method: "POST",
        headers: {
          [SECRET_HEADER]: this.options.secret,
          "content-type": "application/octet-stream",
        },
        body,
        signal: this.track(controller),
      });
      const text = res.status === 204 ? "" : await res.text();
      if (!res.ok) {
        logger.warn("Peer {peer} answered {status} to {route}: {text}", {
          peer: peer.id,
          status: res.status,
          route,
          text,
        });
      }
      return res.ok;
    } catch (err) {
      if (!this.closed) {
        logger.debug("Cannot reach peer {peer}: {error}", { peer: peer.id, error: String(err) });
      }
      return false;
    } finally {
      this.requests.delete(controller);
    }
  }

  /** Stops sending; waits for requests in flight to settle. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    for (const peer of this.peers.values()) clearTimeout(peer.heldTimer);
    for (const peer of this.peers.values()) peer.stream?.abort.abort();
    for (const c of this.requests.keys()) c.abort(new Error("Transport closed"));
    this.requests.clear();
    await Promise.allSettled([...this.inflight]);
  }
}

function approxBytes(m: Message): number {
  let bytes = 128;
  for (const e of m.entries ?? []) bytes += 64 + e.data.length;
  return bytes;
}
