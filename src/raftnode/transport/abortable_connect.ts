/**
 * The connection set-up both hand-written peer senders share (`tcp_post.ts` for HTTP streams,
 * `peer_stream_client.ts` for the peer port): a connect an abort does not wait for, Nagle off, and
 * an abort that tears the connection and the body pump down at once.
 */

/**
 * Connects to `hostname:port` with Nagle's algorithm off. Rejects with the abort reason as soon
 * as `signal` aborts, since a connect into a partition can hang for minutes (a connection that
 * lands afterwards is closed), or with the connect's own error.
 */
export async function connectAbortable(
  hostname: string,
  port: number,
  signal: AbortSignal,
): Promise<Deno.TcpConn> {
  signal.throwIfAborted();
  const connecting = Deno.connect({ hostname, port });
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason ?? new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  let conn: Deno.TcpConn;
  try {
    conn = await Promise.race([connecting, aborted]);
  } catch (err) {
    connecting.then((c) => c.close(), () => {});
    throw err;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  conn.setNoDelay(true);
  return conn;
}

/**
 * When `signal` aborts, closes `conn` and cancels `reader` (the body being pumped onto it).
 * Returns the function that stops watching, for when the exchange has ended.
 */
export function closeOnAbort(
  conn: Deno.TcpConn,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  signal: AbortSignal,
): () => void {
  const onAbort = () => {
    try {
      conn.close();
    } catch { /* already closed */ }
    reader.cancel().catch(() => {});
  };
  signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}
