import assert from "node:assert/strict";
import { parseResponse, tcpPost } from "./tcp_post.ts";

const enc = new TextEncoder();

function bodyOf(chunks: string[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const x of chunks) c.enqueue(enc.encode(x));
      c.close();
    },
  });
}

Deno.test("parseResponse reads content-length, chunked and to-EOF bodies", () => {
  const r1 = parseResponse(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA"));
  assert.deepEqual(r1, { status: 200, body: "ok" });
  const r2 = parseResponse(
    enc.encode(
      "HTTP/1.1 401 Unauthorized\r\ntransfer-encoding: chunked\r\n\r\n3\r\nbad\r\n4\r\n key\r\n0\r\n\r\n",
    ),
  );
  assert.deepEqual(r2, { status: 401, body: "bad key" });
  assert.deepEqual(parseResponse(enc.encode("HTTP/1.0 204 x\r\n\r\n")), { status: 204, body: "" });
  // Incomplete while the connection is open: wait for more.
  assert.equal(
    parseResponse(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nok"), false),
    null,
  );
  assert.equal(parseResponse(enc.encode("HTTP/1.1 200 OK\r\n"), false), null);
  assert.equal(
    parseResponse(
      enc.encode("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n"),
      false,
    ),
    null,
  );
  assert.throws(() => parseResponse(enc.encode("HTTP/1.1 200 OK\r\n")), /complete HTTP response/);
  assert.throws(() => parseResponse(enc.encode("SSH-2.0\r\n\r\n")), /bad status line/);
});

Deno.test("tcpPost streams every chunk in order to Deno.serve and returns the answer", async () => {
  const seen: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    if (req.headers.get("x-secret") !== "s") return new Response("wrong secret", { status: 401 });
    const dec = new TextDecoder();
    for await (const part of req.body!) seen.push(dec.decode(part));
    return Response.json({ path: new URL(req.url).pathname, got: seen.join("") });
  });
  try {
    const url = new URL(`http://127.0.0.1:${server.addr.port}/raft/stream?x=1`);
    const chunks = Array.from({ length: 50 }, (_, i) => `<${i}>`);
    const ok = await tcpPost(
      url,
      { "x-secret": "s" },
      bodyOf(chunks),
      new AbortController().signal,
    );
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { path: "/raft/stream", got: chunks.join("") });
    // Refused before the body is read: the status and text come back, not a write error.
    const refused = await tcpPost(
      url,
      { "x-secret": "no" },
      bodyOf(["a"]),
      new AbortController().signal,
    );
    assert.deepEqual(refused, { status: 401, body: "wrong secret" });
  } finally {
    await server.shutdown();
  }
});

Deno.test("tcpPost: an abort closes the connection and rejects; a dead port rejects", async () => {
  let ended!: () => void;
  const serverSawEnd = new Promise<void>((r) => (ended = r));
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    try {
      for await (const _ of req.body!) { /* drain */ }
    } catch { /* the client went away */ }
    ended();
    return new Response("bye");
  });
  try {
    const url = new URL(`http://127.0.0.1:${server.addr.port}/s`);
    let c!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (x) => void (c = x) });
    const abort = new AbortController();
    const post = tcpPost(url, {}, body, abort.signal);
    c.enqueue(enc.encode("first"));
    await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await assert.rejects(post);
    await serverSawEnd;
    const port = server.addr.port;
    await server.shutdown();
    await assert.rejects(
      tcpPost(new URL(`http://127.0.0.1:${port}/s`), {}, bodyOf([]), new AbortController().signal),
    );
  } finally {
    await server.shutdown().catch(() => {});
  }
});
