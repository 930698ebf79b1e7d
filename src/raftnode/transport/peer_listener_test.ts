import assert from "node:assert/strict";
import type { Message } from "../../../raft/types.ts";
import { lengthPrefixed, stayingAliveRecord } from "./frame_splitter.ts";
import { encodeMessages } from "./message_codec.ts";
import { helloFrame, PeerListener } from "./peer_listener.ts";
import { PeerTransport } from "./peer_transport.ts";
import { append } from "./testing.ts";
import { createRaftHandler } from "./raft_handler.ts";

const SECRET = "s3cret";

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A member's two inbound paths: an HTTP server with the Raft handler (which names the peer port,
 * while `listener` is set) and a peer port, both delivering into `received`. Counts the
 * handler's stream requests, so a test can tell which path a stream took.
 */
class Member {
  readonly received: Message[] = [];
  /** Senders whose streams ended, as `onStreamEnd` names them. */
  readonly ended: string[] = [];
  httpStreams = 0;
  listener: PeerListener | null = null;
  readonly server: Deno.HttpServer<Deno.NetAddr>;
  #stopped = false;

  constructor(withPeerPort: boolean) {
    const handler = createRaftHandler({
      secret: SECRET,
      deliver: (ms) => this.deliver(ms),
      onStreamEnd: (from) => this.ended.push(from),
      peerPort: () => this.listener?.port ?? null,
    });
    this.server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
      if (new URL(req.url).pathname === "/raft/stream") this.httpStreams++;
      return handler(req);
    });
    if (withPeerPort) this.listen();
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.addr.port}`;
  }

  listen(): void {
    this.listener = PeerListener.listen({
      hostname: "127.0.0.1",
      port: 0,
      secret: SECRET,
      deliver: (ms) => this.deliver(ms),
      onStreamEnd: (from) => this.ended.push(from),
    });
  }

  /** Throws STOPPED while stopped, as a stopped node does. */
  deliver(messages: Message[]): void {
    if (this.#stopped) throw Object.assign(new Error("stopped"), { code: "STOPPED" });
    this.received.push(...messages);
  }

  stopNode(stopped: boolean): void {
    this.#stopped = stopped;
  }

  async close(): Promise<void> {
    await this.listener?.close();
    await this.server.shutdown();
  }
}

/** Connects to a peer port, writes `bytes`, and returns what the listener wrote back before closing. */
async function exchange(port: number, bytes: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes);
    let out = "";
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return out;
      out += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    conn.close();
  }
}

Deno.test("peer port: a transport streams to it, in order, payloads intact, not over HTTP", async () => {
  const b = new Member(true);
  const t = new PeerTransport({ secret: SECRET });
  try {
    t.setPeer("b", b.url);
    const sent: Message[] = [];
    for (let i = 1; i <= 300; i++) sent.push(append(i, new Uint8Array(200).fill(i & 255)));
    for (let i = 0; i < 300; i += 30) t.send(sent.slice(i, i + 30));
    await until(() => b.received.length === 300);
    assert.deepEqual(b.received, sent);
    assert.equal(b.httpStreams, 0, "no HTTP stream was opened");
  } finally {
    await t.close();
    await b.close();
  }
});

Deno.test("peer port: a member without one is streamed to over HTTP", async () => {
  const b = new Member(false);
  const t = new PeerTransport({ secret: SECRET });
  try {
    t.setPeer("b", b.url);
    t.send([append(1, new Uint8Array([1]))]);
    await until(() => b.received.length === 1);
    assert.equal(b.httpStreams, 1);
  } finally {
    await t.close();
    await b.close();
  }
});

Deno.test("peer port: a member back on another port is found again", async () => {
  const b = new Member(true);
  const unreachable: string[] = [];
  const t = new PeerTransport({ secret: SECRET, onUnreachable: (p) => unreachable.push(p) });
  try {
    t.setPeer("b", b.url);
    t.send([append(1, new Uint8Array([1]))]);
    await until(() => b.received.length === 1);
    const oldPort = b.listener!.port;
    await b.listener!.close(); // the stream ends: reported, and the next send asks again
    await until(() => unreachable.length > 0);
    b.listen();
    assert.notEqual(b.listener!.port, oldPort);
    for (let i = 2; b.received.length < 2 && i < 200; i++) {
      t.send([append(2, new Uint8Array([2]))]);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(b.received.at(-1), append(2, new Uint8Array([2])));
    assert.equal(b.httpStreams, 0);
  } finally {
    await t.close();
    await b.close();
  }
});

Deno.test("peer port: a wrong secret is refused, delivers nothing, and reports the peer", async () => {
  const b = new Member(true);
  const unreachable: string[] = [];
  const t = new PeerTransport({ secret: "wrong", onUnreachable: (p) => unreachable.push(p) });
  try {
    // The discovery route wants the secret too: ask the listener directly as well.
    const answer = await exchange(b.listener!.port, lengthPrefixed(helloFrame("wrong")));
    assert.equal(JSON.parse(answer).error.code, "RAFT_UNAUTHORIZED");
    t.setPeer("b", b.url);
    t.send([append(1, new Uint8Array([1]))]);
    await until(() => unreachable.length > 0);
    assert.equal(b.received.length, 0);
  } finally {
    await t.close();
    await b.close();
  }
});

Deno.test("peer port: a stray client, a bad hello and an oversized frame are refused by name", async () => {
  const b = new Member(true);
  try {
    const port = b.listener!.port;
    const enc = new TextEncoder();
    const http = await exchange(port, enc.encode("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
    assert.equal(JSON.parse(http).error.code, "RAFT_BAD_HELLO");
    const v2 = await exchange(port, lengthPrefixed(enc.encode('{"v":2,"secret":"s3cret"}')));
    assert.equal(JSON.parse(v2).error.code, "RAFT_BAD_HELLO");
    const notJson = await exchange(port, lengthPrefixed(enc.encode("hello")));
    assert.equal(JSON.parse(notJson).error.code, "RAFT_BAD_HELLO");
    // A good hello, then a frame header announcing 1 GiB.
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, 1024 ** 3, true);
    const big = await exchange(
      port,
      new Uint8Array([...lengthPrefixed(helloFrame(SECRET)), ...head]),
    );
    assert.equal(JSON.parse(big).error.code, "RAFT_BODY_TOO_LARGE");
    // A good hello, then a garbled frame.
    const garbled = await exchange(
      port,
      new Uint8Array([...lengthPrefixed(helloFrame(SECRET)), 1, 0, 0, 0, 0x7b]),
    );
    assert.match(JSON.parse(garbled).error.code, /^RAFT_/);
    assert.equal(b.received.length, 0);
  } finally {
    await b.close();
  }
});

Deno.test("peer port: frames split at any byte, hello included, arrive intact; a stopped node ends the stream", async () => {
  const b = new Member(true);
  try {
    const big = new Uint8Array(150 * 1024).map((_, i) => (i * 131 + 7) & 255);
    const sent = [1, 2, 3, 4].map((i) => append(i, i === 2 ? big : new Uint8Array([i])));
    const parts = [
      lengthPrefixed(helloFrame(SECRET)),
      ...sent.map((m) => lengthPrefixed(encodeMessages([m]))),
    ];
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let end = 0;
    for (const p of parts) {
      bytes.set(p, end);
      end += p.length;
    }
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: b.listener!.port });
    let at = 0;
    for (let n = 1; at < bytes.length; n = (n * 7) % 97 + 1) {
      const piece = bytes.slice(at, at + (n < 50 ? n : 60_000));
      at += piece.length;
      await conn.write(piece);
      if (n % 5 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await until(() => b.received.length === sent.length);
    assert.deepEqual(b.received, sent);
    b.stopNode(true);
    await conn.write(lengthPrefixed(encodeMessages([append(5, new Uint8Array([5]))])));
    let answer = "";
    const buf = new Uint8Array(1024);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      answer += new TextDecoder().decode(buf.subarray(0, n));
    }
    assert.equal(JSON.parse(answer).error.code, "RAFT_UNAVAILABLE");
    assert.equal(b.received.length, sent.length);
    conn.close();
  } finally {
    await b.close();
  }
});

Deno.test("peer port: the handler names it only to members with the secret", async () => {
  const b = new Member(true);
  try {
    const without = await fetch(`${b.url}/raft/peer-port`);
    assert.equal(without.status, 401);
    await without.body?.cancel();
    const withSecret = await fetch(`${b.url}/raft/peer-port`, {
      headers: { "x-ctl-cluster-secret": SECRET },
    });
    assert.deepEqual(await withSecret.json(), { port: b.listener!.port });
    const none = new Member(false);
    const missing = await fetch(`${none.url}/raft/peer-port`, {
      headers: { "x-ctl-cluster-secret": SECRET },
    });
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.code, "RAFT_NO_PEER_PORT");
    await none.close();
  } finally {
    await b.close();
  }
});

for (const peerPort of [true, false]) {
  Deno.test(`peer ${peerPort ? "port" : "HTTP stream"}: a stream's end names its sender, and only once it has spoken`, async () => {
    const b = new Member(peerPort);
    const t = new PeerTransport({ secret: SECRET });
    try {
      t.setPeer("b", b.url);
      t.send([append(1, new Uint8Array([1]))]);
      await until(() => b.received.length === 1);
      assert.deepEqual(b.ended, [], "an open stream has not ended");
      await t.close();
      await until(() => b.ended.length === 1);
      assert.deepEqual(b.ended, ["a"]);
      if (peerPort) {
        // A connection that ends before any message names nobody.
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: b.listener!.port });
        await conn.write(lengthPrefixed(helloFrame(SECRET)));
        conn.close();
        await new Promise((r) => setTimeout(r, 50));
        assert.deepEqual(b.ended, ["a"]);
      }
    } finally {
      await t.close();
      await b.close();
    }
  });
}

Deno.test("peer port: a sender's connection closing mid-stream is reported; the listener's own close is not", async () => {
  const b = new Member(true);
  try {
    const frame = lengthPrefixed(encodeMessages([append(1, new Uint8Array([7]))]));
    const hello = lengthPrefixed(helloFrame(SECRET));
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: b.listener!.port });
    await conn.write(new Uint8Array([...hello, ...frame, ...frame.subarray(0, 3)]));
    await until(() => b.received.length === 1);
    conn.close(); // half a frame in flight: the process is gone
    await until(() => b.ended.length === 1);
    assert.deepEqual(b.ended, ["a"]);
    const other = await Deno.connect({ hostname: "127.0.0.1", port: b.listener!.port });
    await other.write(new Uint8Array([...hello, ...frame]));
    await until(() => b.received.length === 2);
    await b.listener!.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(b.ended, ["a"], "closing the listener reported nobody");
    other.close();
  } finally {
    await b.close();
  }
});

for (const peerPort of [true, false]) {
  Deno.test(`peer ${peerPort ? "port" : "HTTP stream"}: streams replaced by a live sender are not reported as its end`, async () => {
    const b = new Member(peerPort);
    const t = new PeerTransport({ secret: SECRET, streamMaxAgeMs: 100, requestTimeoutMs: 400 });
    try {
      t.setPeer("b", b.url);
      const deadline = performance.now() + 700;
      let i = 0;
      while (performance.now() < deadline) {
        t.send([append(++i, new Uint8Array([i & 255]))]);
        await new Promise((r) => setTimeout(r, 20));
      }
      await until(() => b.received.length === i);
      const streams = peerPort ? b.listener!.accepted : b.httpStreams;
      assert.ok(streams >= 3, `the sender replaced its stream (${streams} streams)`);
      assert.deepEqual(b.ended, [], "no replaced stream was taken for the sender's end");
    } finally {
      await t.close();
      await b.close();
    }
  });
}

Deno.test("peer port: a stream ended by the staying-alive record names nobody", async () => {
  const b = new Member(true);
  try {
    const frame = lengthPrefixed(encodeMessages([append(1, new Uint8Array([7]))]));
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: b.listener!.port });
    await conn.write(
      new Uint8Array([...lengthPrefixed(helloFrame(SECRET)), ...frame, ...stayingAliveRecord()]),
    );
    await until(() => b.received.length === 1);
    conn.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(b.ended, []);
  } finally {
    await b.close();
  }
});
