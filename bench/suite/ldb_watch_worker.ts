/**
 * A worker that watches an LDB through the reader library: every ~0.2 ms it reads `lastSeq()`
 * and, when it moved, posts `{ seq, atMs }` (wall-clock ms with sub-ms precision) to its parent.
 * It runs on its own thread so the bench's HTTP client cannot delay the observation. The parent
 * stops it by setting the shared flag `stop[0] = 1`.
 */
import { openLdb } from "../../mod.ts";

/** The worker's global scope, typed for what this file uses. */
const scope = self as unknown as {
  onmessage: (e: MessageEvent<{ path: string; stop: SharedArrayBuffer }>) => void;
  postMessage(message: unknown): void;
  close(): void;
};

scope.onmessage = (e) => {
  const stop = new Int32Array(e.data.stop);
  const reader = openLdb(e.data.path);
  let last = -1;
  const post = (m: unknown) => scope.postMessage(m);
  post({ ready: true });
  while (Atomics.wait(stop, 0, 0, 0.2) !== "not-equal") {
    const seq = reader.lastSeq();
    if (seq !== last) {
      last = seq;
      post({ seq, atMs: performance.timeOrigin + performance.now() });
    }
  }
  reader.close();
  post({ done: true });
  scope.close();
};
