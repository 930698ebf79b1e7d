/**
 * A TCP proxy that delays every chunk, in both directions, by the latency written in a control
 * file: the latency fault where the kernel has no `netem` qdisc (this machine's has none).
 *
 * `deno run -A tests/fault/delay_proxy.ts LISTEN_PORT TARGET_HOST:PORT CONTROL_FILE`
 *
 * It runs inside a member's namespace; an iptables `REDIRECT` rule in that namespace sends every
 * connection arriving for the executive's port to it, and it connects on to the executive. The
 * control file holds `DELAY_MS JITTER_MS` (re-read every 100 ms); `0 0` passes data straight
 * through. Bytes of one direction keep their order: each chunk leaves at
 * max(previous departure, arrival + delay ± jitter).
 */

function parseControl(text: string): { delayMs: number; jitterMs: number } {
  const [d, j] = text.trim().split(/\s+/).map(Number);
  return { delayMs: Number.isFinite(d) ? d : 0, jitterMs: Number.isFinite(j) ? j : 0 };
}

async function pump(
  from: Deno.Conn,
  to: Deno.Conn,
  latency: () => number,
): Promise<void> {
  const queue: { at: number; chunk: Uint8Array }[] = [];
  let wake: (() => void) | null = null;
  let done = false;
  let last = 0;
  const writer = (async () => {
    for (;;) {
      const item = queue.shift();
      if (!item) {
        if (done) return;
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      const wait = item.at - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      let off = 0;
      while (off < item.chunk.length) off += await to.write(item.chunk.subarray(off));
    }
  })().catch(() => {
    // The far side went away (a member killed): end this connection, never the whole proxy.
    try {
      from.close();
    } catch { /* already closed */ }
  });
  try {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      last = Math.max(last, performance.now() + latency());
      queue.push({ at: last, chunk: buf.slice(0, n) });
      const w = wake as (() => void) | null;
      wake = null;
      w?.();
    }
  } catch { /* the connection broke */ }
  done = true;
  const w = wake as (() => void) | null;
  w?.();
  try {
    await writer;
    await to.closeWrite();
  } catch { /* already closed */ }
}

if (import.meta.main) {
  const [listenPort, target, controlFile] = Deno.args;
  const [host, port] = target.split(":");
  let control = { delayMs: 0, jitterMs: 0 };
  const reload = async () => {
    try {
      control = parseControl(await Deno.readTextFile(controlFile));
    } catch { /* keep the last */ }
  };
  await reload();
  setInterval(reload, 100);
  const latency = () => {
    const { delayMs, jitterMs } = control;
    if (delayMs <= 0 && jitterMs <= 0) return 0;
    return Math.max(0, delayMs + (Math.random() * 2 - 1) * jitterMs);
  };
  const listener = Deno.listen({ hostname: "0.0.0.0", port: Number(listenPort) });
  for await (const conn of listener) {
    (async () => {
      let upstream: Deno.Conn;
      try {
        upstream = await Deno.connect({ hostname: host, port: Number(port) });
      } catch {
        conn.close();
        return;
      }
      await Promise.all([pump(conn, upstream, latency), pump(upstream, conn, latency)]);
      try {
        conn.close();
      } catch { /* closed */ }
      try {
        upstream.close();
      } catch { /* closed */ }
    })();
  }
}
