/**
 * Outbound peer traffic over HTTP with keep-alive (`fetch` reuses connections).
 *
 * Each peer has a bounded queue and one sender: whatever accumulated while the previous request
 * was in flight goes out as one batch. The receiver answers as soon as it has queued the
 * messages, so sending is pipelined with the peer's processing; replies come back as messages.
 * A full queue or a failed request drops the messages (Raft retransmits) and reports the peer
 * unreachable. Snapshot chunks (MsgSnap, cut by the core and acknowledged chunk by chunk) go on
 * a separate per-peer stream, so a large chunk never holds up heartbeats and appends.
 */

import { getLogger } from "@logtape/logtape";
import type { Message, NodeId } from "../../../raft/types.ts";
import { encodeMessages } from "./message_codec.ts";
import { SECRET_HEADER } from "./peer_auth.ts";

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
}

/** Sends messages to peers. */
export class PeerTransport {
  private readonly peers = new Map<NodeId, Peer>();
  private closed = false;
  private readonly prefix: string;
  private readonly queueMessagesMax: number;
  private readonly batchMessagesMax: number;
  private readonly batchBytesMax: number;
  private readonly timeoutMs: number;
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
  }

  /** Adds or updates a peer's base URL (e.g. "http://127.0.0.1:7001"). */
  setPeer(id: NodeId, url: string): void {
    const base = url.replace(/\/+$/, "");
    const peer = this.peers.get(id);
    if (peer) peer.url = base;
    else {
      this.peers.set(id, {
        id,
        url: base,
        queue: [],
        sending: false,
        snapshots: [],
        sendingSnapshot: false,
      });
    }
  }

  /** Forgets a peer; queued messages to it are dropped. */
  removePeer(id: NodeId): void {
    this.peers.delete(id);
  }

  /** The known peer URLs. */
  peerUrls(): Map<NodeId, string> {
    return new Map([...this.peers.values()].map((p) => [p.id, p.url]));
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
    for (const peer of touched) this.pump(peer);
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
    this.watchdog ??= setInterval(() => {
      const now = performance.now();
      for (const [c, startedMs] of this.requests) {
        if (now - startedMs > this.timeoutMs) {
          this.requests.delete(c);
          c.abort(new Error(`Peer request timed out after ${this.timeoutMs} ms`));
        }
      }
    }, Math.max(50, Math.min(1000, this.timeoutMs / 4)));
    return controller.signal;
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
