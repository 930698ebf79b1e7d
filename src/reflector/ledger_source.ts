/**
 * Reads the ledger from one executive: the NDJSON stream `GET /v1/ledger/stream?after=SEQ`, or,
 * when an executive does not serve it, the long-poll route `GET /v1/ledger?after&limit&wait_ms`.
 * Never polls on a fixed interval: the stream pushes, the long poll waits on the server.
 *
 * Yields batches of contiguous-by-arrival entries with the newest cluster seq seen, so the caller
 * can apply several entries per transaction while catching up.
 */
import type { LedgerEntry } from "../ledger/types.ts";

/** Most entries one long-poll request asks for. */
export const POLL_LIMIT = 1_000;
/** How long one long-poll request waits on the server for a new entry. */
export const POLL_WAIT_MS = 10_000;
/** Longest NDJSON line accepted (an entry holds at most 100 mutations of ≤ 1 MiB in total). */
export const LINE_BYTES_MAX = 8 * 1024 * 1024;
/** Most entries yielded in one batch. */
export const SOURCE_BATCH_ENTRIES_MAX = 1_000;

/** What the source read since the last batch. */
export interface LedgerBatch {
  entries: LedgerEntry[];
  /** The cluster's last committed seq as the executive last reported it, if it did. */
  lastSeq: number | undefined;
}

/** Why reading from an executive failed; `code` is stable. */
export class LedgerSourceError extends Error {
  override name = "LedgerSourceError";
  readonly code: "ledger_gone" | "ledger_http" | "ledger_protocol" | "ledger_idle";
  constructor(code: LedgerSourceError["code"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export interface SourceOptions {
  /** The executive's base URL, e.g. `http://127.0.0.1:7001`. */
  baseUrl: string;
  /** Read entries after this seq. */
  after: number;
  signal: AbortSignal;
  /** Give up on a stream that sent nothing (not even a heartbeat) for this long. */
  idleTimeoutMs: number;
  fetch?: typeof fetch;
}

/** Reads the ledger from one executive: the stream, else the long poll. Ends when it breaks. */
export async function* readLedger(options: SourceOptions): AsyncGenerator<LedgerBatch> {
  const doFetch = options.fetch ?? fetch;
  const streamUrl = `${trimSlash(options.baseUrl)}/v1/ledger/stream?after=${options.after}`;
  const { response, release } = await fetchWithIdle(doFetch, streamUrl, options);
  try {
    if ([404, 405, 501].includes(response.status)) {
      await response.body?.cancel();
      release();
      yield* pollLedger(options);
      return;
    }
    await checkStatus(response, streamUrl);
    yield* readStream(response, options);
  } finally {
    release();
  }
}

/** A response and the function that releases its abort wiring once its body is consumed. */
interface OpenResponse {
  response: Response;
  release: () => void;
}

/**
 * Fetches with a timeout on the answer only (status and headers), not on the body: a stream may
 * last for hours, and its silence is watched line by line instead. Aborting `options.signal`
 * aborts the request and its body until `release()`.
 */
async function fetchWithIdle(
  doFetch: typeof fetch,
  url: string,
  options: SourceOptions,
  extraTimeoutMs = 0,
): Promise<OpenResponse> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal.reason);
  const release = () => options.signal.removeEventListener("abort", onAbort);
  if (options.signal.aborted) onAbort();
  options.signal.addEventListener("abort", onAbort, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.idleTimeoutMs + extraTimeoutMs);
  try {
    return { response: await doFetch(url, { signal: controller.signal }), release };
  } catch (e) {
    release();
    if (timedOut) {
      throw new LedgerSourceError("ledger_idle", `${url} did not answer within the idle timeout`);
    }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function checkStatus(response: Response, url: string): Promise<void> {
  if (response.status === 200) return;
  const body = (await response.text().catch(() => "")).slice(0, 300);
  if (response.status === 410) {
    throw new LedgerSourceError(
      "ledger_gone",
      `${url}: the executive no longer holds the ledger after this seq (410): the LDB is older ` +
        `than the ledger retention and must be bootstrapped from a snapshot. ${body}`,
    );
  }
  throw new LedgerSourceError("ledger_http", `${url} answered ${response.status}: ${body}`);
}

async function* readStream(
  response: Response,
  options: SourceOptions,
): AsyncGenerator<LedgerBatch> {
  if (!response.body) throw new LedgerSourceError("ledger_protocol", "stream has no body");
  const reader = response.body.getReader();
  const aborted = new Promise<never>((_, reject) => {
    if (options.signal.aborted) reject(options.signal.reason);
    options.signal.addEventListener("abort", () => reject(options.signal.reason), { once: true });
  });
  aborted.catch(() => {}); // observed through the race below; never an unhandled rejection
  const decoder = new TextDecoder();
  let pending = "";
  try {
    while (true) {
      const chunk = await readWithIdle(reader, aborted, options);
      if (chunk === undefined) return; // the executive ended the stream
      pending += decoder.decode(chunk, { stream: true });
      const cut = pending.lastIndexOf("\n");
      if (cut < 0) {
        if (pending.length > LINE_BYTES_MAX) {
          throw new LedgerSourceError("ledger_protocol", "a ledger stream line exceeds 8 MiB");
        }
        continue;
      }
      const lines = pending.slice(0, cut).split("\n");
      pending = pending.slice(cut + 1);
      let batch: LedgerBatch = { entries: [], lastSeq: undefined };
      for (const line of lines) {
        if (line.trim() === "") continue;
        const item = parseStreamLine(line);
        if (typeof item === "number") {
          batch.lastSeq = Math.max(batch.lastSeq ?? 0, item);
        } else {
          batch.entries.push(item);
          batch.lastSeq = Math.max(batch.lastSeq ?? 0, item.seq);
        }
        if (batch.entries.length === SOURCE_BATCH_ENTRIES_MAX) {
          yield batch;
          batch = { entries: [], lastSeq: undefined };
        }
      }
      if (batch.entries.length > 0 || batch.lastSeq !== undefined) yield batch;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

async function readWithIdle(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  aborted: Promise<never>,
  options: SourceOptions,
): Promise<Uint8Array | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() =>
      reject(
        new LedgerSourceError(
          "ledger_idle",
          `${options.baseUrl} sent nothing for ${options.idleTimeoutMs} ms`,
        ),
      ), options.idleTimeoutMs);
  });
  try {
    const { value, done } = await Promise.race([reader.read(), idle, aborted]);
    return done ? undefined : value;
  } finally {
    clearTimeout(timer);
  }
}

/** One stream line: a ledger entry, or the seq a heartbeat line reports. */
export function parseStreamLine(line: string): LedgerEntry | number {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new LedgerSourceError("ledger_protocol", `bad ledger line: ${line.slice(0, 100)}`);
  }
  if (value && typeof value === "object" && "heartbeat" in value) {
    const seq = (value as { heartbeat: unknown }).heartbeat;
    if (isSeq(seq)) return seq;
  } else if (isEntry(value)) {
    return value;
  }
  throw new LedgerSourceError("ledger_protocol", `bad ledger line: ${line.slice(0, 100)}`);
}

function isSeq(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isEntry(v: unknown): v is LedgerEntry {
  if (!v || typeof v !== "object") return false;
  const e = v as Record<string, unknown>;
  return isSeq(e.seq) && e.seq > 0 && typeof e.ts === "number" && Number.isFinite(e.ts) &&
    Array.isArray(e.ops) && (e.family === null || typeof e.family === "string");
}

async function* pollLedger(options: SourceOptions): AsyncGenerator<LedgerBatch> {
  const doFetch = options.fetch ?? fetch;
  let after = options.after;
  let emptyPauseMs = 0;
  while (!options.signal.aborted) {
    const startedMs = performance.now();
    const url = `${trimSlash(options.baseUrl)}/v1/ledger?after=${after}&limit=${POLL_LIMIT}` +
      `&wait_ms=${POLL_WAIT_MS}`;
    const { response, release } = await fetchWithIdle(doFetch, url, options, POLL_WAIT_MS);
    let body: { entries?: unknown; lastSeq?: unknown };
    try {
      await checkStatus(response, url);
      body = await response.json();
    } finally {
      release();
    }
    if (!Array.isArray(body.entries) || !body.entries.every(isEntry) || !isSeq(body.lastSeq)) {
      throw new LedgerSourceError("ledger_protocol", `${url}: malformed ledger page`);
    }
    const entries = body.entries as LedgerEntry[];
    if (entries.length > POLL_LIMIT) {
      throw new LedgerSourceError("ledger_protocol", `${url}: more entries than limit`);
    }
    yield { entries, lastSeq: body.lastSeq };
    if (entries.length > 0) {
      after = entries[entries.length - 1].seq;
      emptyPauseMs = 0;
    } else if (performance.now() - startedMs < POLL_WAIT_MS / 2) {
      // An executive that answers an empty page at once does not long-poll: back off instead
      // of spinning on it.
      emptyPauseMs = Math.min(Math.max(emptyPauseMs * 2, 50), 1_000);
      await new Promise((r) => setTimeout(r, emptyPauseMs));
    }
  }
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}
