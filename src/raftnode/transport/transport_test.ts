import assert from "node:assert/strict";
import type { Message } from "../../../raft/types.ts";
import { encodeMessages } from "./message_codec.ts";
import { SECRET_HEADER } from "./peer_auth.ts";
import { PeerTransport } from "./peer_transport.ts";
import { append } from "./testing.ts";
import { createRaftHandler } from "./raft_handler.ts";

const SECRET = "s3cret";
const conf = {
  voters: ["a", "b"],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

async function withServer(
  body: (url: string, received: Message[]) => Promise<void>,
): Promise<void> {
  const received: Message[] = [];
  const handler = createRaftHandler({ secret: SECRET, deliver: (ms) => received.push(...ms) });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, handler);
  try {
    await body(`http://127.0.0.1:${server.addr.port}`, received);
  } finally {
    await server.shutdown();
  }
}

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const mode of ["stream", "request"] as const) {
  Deno.test(`transport[${mode}]: messages arrive in order, batched, with payloads intact`, () =>
    withServer(async (url, received) => {
      const t = new PeerTransport({ secret: SECRET, mode });
      t.setPeer("b", url);
      const sent: Message[] = [];
      for (let i = 1; i <= 500; i++) sent.push(append(i, new Uint8Array(100).fill(i & 255)));
      // In several sends, as the node does (one per Ready).
      for (let i = 0; i < 500; i += 50) t.send(sent.slice(i, i + 50));
      await until(() => received.length === 500);
      assert.deepEqual(received, sent);
      await t.close();
    }));
}

Deno.test("transport: snapshot chunks travel on their own stream, in order, intact", () =>
  withServer(async (url, received) => {
    const t = new PeerTransport({ secret: SECRET });
    t.setPeer("b", url);
    const data = crypto.getRandomValues(new Uint8Array(10_500));
    const chunks: Message[] = [0, 4000, 8000].map((offset) => ({
      type: "MsgSnap",
      from: "a",
      to: "b",
      term: 3,
      snapshot: { index: 99, term: 2, conf },
      snapshotOffset: offset,
      snapshotData: data.subarray(offset, offset + 4000),
      snapshotDone: offset === 8000,
    }));
    t.send([...chunks, { type: "MsgHeartbeat", from: "a", to: "b", term: 3 }]);
    await until(() => received.length === 4);
    assert.deepEqual(received.filter((m) => m.type === "MsgSnap"), chunks);
    await t.close();
  }));

Deno.test("transport: peer requests without the secret get 401 and deliver nothing", () =>
  withServer(async (url, received) => {
    const frame = encodeMessages([{ type: "MsgHeartbeat", from: "x", to: "b", term: 99 }]);
    for (
      const headers of [{}, { [SECRET_HEADER]: "wrong" }, { [SECRET_HEADER]: "" }] as Record<
        string,
        string
      >[]
    ) {
      for (const route of ["/raft/msgs", "/raft/snap", "/raft/stream"]) {
        const res = await fetch(`${url}${route}`, { method: "POST", headers, body: frame });
        assert.equal(res.status, 401);
        assert.equal((await res.json()).error.code, "RAFT_UNAUTHORIZED");
      }
    }
    const unreachable: string[] = [];
    const t2 = new PeerTransport({ secret: "nope", onUnreachable: (p) => unreachable.push(p) });
    t2.setPeer("b", url);
    t2.send([{ type: "MsgHeartbeat", from: "x", to: "b", term: 99 }]);
    await until(() => unreachable.length > 0);
    assert.equal(received.length, 0);
    await t2.close();
  }));

Deno.test("transport: a garbled frame gets 400 and delivers nothing", () =>
  withServer(async (url, received) => {
    const res = await fetch(`${url}/raft/msgs`, {
      method: "POST",
      headers: { [SECRET_HEADER]: SECRET },
      body: new Uint8Array([1, 0, 0, 0, 0x7b]),
    });
    assert.equal(res.status, 400);
    await res.body?.cancel();
    assert.equal(received.length, 0);
  }));

Deno.test("transport: an unreachable peer is reported and a full queue drops, never blocks", async () => {
  const unreachable: string[] = [];
  const t = new PeerTransport({
    secret: SECRET,
    queueMessagesMax: 10,
    onUnreachable: (p) => unreachable.push(p),
  });
  // A port nobody listens on: bind, read the port, close.
  const l = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  t.setPeer("b", `http://127.0.0.1:${port}`);
  const msgs: Message[] = [];
  for (let i = 0; i < 100; i++) msgs.push({ type: "MsgHeartbeat", from: "a", to: "b", term: 1 });
  t.send(msgs);
  assert.ok(unreachable.length >= 80, `queue overflow reported ${unreachable.length} times`);
  const before = unreachable.length;
  await until(() => unreachable.length > before);
  t.send([{ type: "MsgHeartbeat", from: "a", to: "zz", term: 1 }]);
  assert.equal(unreachable[unreachable.length - 1], "zz");
  await t.close();
});

for (const via of ["http", "peer port"] as const) {
  Deno.test(`transport: a stream to a peer that stopped reading is reopened by the watchdog (${via})`, async () => {
    // A listener that accepts connections and never reads: a peer gone silent. Over HTTP the
    // peer's URL points at it; for the peer port, its HTTP server names it as the peer port.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const silentPort = (listener.addr as Deno.NetAddr).port;
    const conns: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const c of listener) conns.push(c);
    })();
    const server = via === "peer port"
      ? Deno.serve(
        { port: 0, hostname: "127.0.0.1", onListen: () => {} },
        () => Response.json({ port: silentPort }),
      )
      : null;
    const unreachable: string[] = [];
    const t = new PeerTransport({
      secret: SECRET,
      streamBufferBytes: 256 * 1024,
      requestTimeoutMs: 300,
      usePeerPort: via === "peer port",
      onUnreachable: (p) => unreachable.push(p),
    });
    t.setPeer("b", `http://127.0.0.1:${server?.addr.port ?? silentPort}`);
    const big: Message = {
      type: "MsgApp",
      from: "a",
      to: "b",
      term: 1,
      entries: [{ index: 1, term: 1, type: "normal", data: new Uint8Array(64 * 1024) }],
    };
    for (let i = 0; i < 400 && conns.length < 2; i++) {
      t.send([big]);
      await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => conns.length >= 2, 5000);
    assert.ok(unreachable.length > 0, "a stalled peer is reported unreachable");
    await t.close();
    await server?.shutdown();
    listener.close();
    for (const c of conns) c.close();
    await accepting.catch(() => {});
  });
}

for (const mode of ["stream", "request"] as const) {
  Deno.test(`transport[${mode}]: held messages ride in front of the next send, or go at their deadline`, async () => {
    const frames: Message[][] = [];
    const handler = createRaftHandler({ secret: SECRET, deliver: (ms) => frames.push([...ms]) });
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, handler);
    const t = new PeerTransport({ secret: SECRET, mode });
    try {
      t.setPeer("b", `http://127.0.0.1:${server.addr.port}`);
      // A commit-only append (no entries) for a follower whose log ends at `n`.
      const commit = (n: number) => append(n + 1, null, n);
      // Held with a long deadline: the next send carries it, first, in the same frame.
      t.hold([commit(1)], 10_000);
      await new Promise((r) => setTimeout(r, 30));
      assert.deepEqual(frames, [], "a held message waits");
      t.send([append(2, new Uint8Array([2]))]);
      await until(() => frames.length === 1);
      assert.deepEqual(frames[0], [commit(1), append(2, new Uint8Array([2]))]);
      // Nothing follows: it goes on its own once the deadline passes.
      const heldAt = performance.now();
      t.hold([commit(2)], 40);
      await until(() => frames.length === 2);
      assert.ok(performance.now() - heldAt >= 35, "not before its deadline");
      assert.deepEqual(frames[1], [commit(2)]);
    } finally {
      await t.close();
      await server.shutdown();
    }
  });
}

Deno.test("transport: stream frames split at any byte, and frames larger than a read, arrive intact", () =>
  withServer(async (url, received) => {
    const big = new Uint8Array(200 * 1024).map((_, i) => (i * 131 + 7) & 255);
    const sent = [1, 2, 3, 4, 5].map((i) => append(i, i === 3 ? big : new Uint8Array([i]), 0));
    const frames = sent.map((m) => encodeMessages([m]));
    const body = new Uint8Array(frames.reduce((n, f) => n + 4 + f.length, 0));
    let end = 0;
    for (const f of frames) {
      new DataView(body.buffer).setUint32(end, f.length, true);
      body.set(f, end + 4);
      end += 4 + f.length;
    }
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(url).port) });
    conn.setNoDelay(true);
    const enc = new TextEncoder();
    await conn.write(enc.encode(
      `POST /raft/stream HTTP/1.1\r\nhost: x\r\n${SECRET_HEADER}: ${SECRET}\r\n` +
        "transfer-encoding: chunked\r\n\r\n",
    ));
    // Pieces of 1 to 97 bytes, then the rest, each its own chunk and mostly its own read.
    let at = 0;
    for (let n = 1; at < body.length; n = (n * 7) % 97 + 1) {
      const piece = body.slice(at, at + (n < 50 ? n : 70_000));
      at += piece.length;
      await conn.write(enc.encode(piece.length.toString(16) + "\r\n"));
      await conn.write(piece);
      await conn.write(enc.encode("\r\n"));
      if (n % 5 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await conn.write(enc.encode("0\r\n\r\n"));
    await until(() => received.length === sent.length);
    assert.deepEqual(received, sent);
    const answer = new Uint8Array(1024);
    const n = await conn.read(answer);
    assert.match(new TextDecoder().decode(answer.subarray(0, n ?? 0)), /^HTTP\/1\.1 204/);
    conn.close();
  }));
