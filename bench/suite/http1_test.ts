import assert from "node:assert/strict";
import { parseAnswer, RawPoster } from "./http1.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("parseAnswer waits for the whole body, content-length or chunked", () => {
  const cl = 'HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{"seq":1}';
  assert.equal(parseAnswer(bytes(cl.slice(0, 30))), null);
  assert.equal(parseAnswer(bytes(cl.slice(0, -1))), null);
  assert.deepEqual(parseAnswer(bytes(cl)), {
    answer: { status: 200, text: '{"seq":1}' },
    close: false,
  });
  const chunked = "HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n" +
    'connection: close\r\n\r\n4\r\n{"é\r\n5\r\n":1}\n\r\n0\r\n\r\n';
  assert.equal(parseAnswer(bytes(chunked.slice(0, -6))), null);
  // "é" is two bytes: chunk sizes count bytes, not characters.
  assert.deepEqual(parseAnswer(bytes(chunked)), {
    answer: { status: 503, text: '{"é":1}\n' },
    close: true,
  });
  assert.throws(() => parseAnswer(bytes("SSH-2.0-x\r\n\r\n")), /bad status line/);
});

Deno.test("RawPoster keeps one connection across requests and reconnects after close", async () => {
  const peers = new Set<string>();
  let n = 0;
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    async (req, info) => {
      peers.add(`${info.remoteAddr.hostname}:${info.remoteAddr.port}`);
      const body = await req.text();
      n++;
      const headers = n === 3 ? { connection: "close" } : undefined;
      return new Response(`${req.headers.get("x-test")}:${body}`, { status: 201, headers });
    },
  );
  const poster = new RawPoster();
  try {
    const url = `http://127.0.0.1:${server.addr.port}/p?q=1`;
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await poster.post(url, { "x-test": "h" }, `b${i}`), {
        status: 201,
        text: `h:b${i}`,
      });
    }
    assert.equal(peers.size, 1);
    assert.deepEqual(await poster.post(url, { "x-test": "h" }, "é".repeat(40_000)), {
      status: 201,
      text: `h:${"é".repeat(40_000)}`,
    });
    assert.equal(peers.size, 2); // the server closed after the third answer
  } finally {
    poster.close();
    await server.shutdown();
  }
});
