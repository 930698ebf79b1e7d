/**
 * Finding and opening the newest published snapshot behind a bootstrap URL:
 *  - `file:///DIR` or `file:///DIR/latest.json`: the manifest, then the file it names;
 *  - `http(s)://…/` (ending in `/`): `latest.json` under that prefix, then the file it names;
 *  - `http(s)://…` otherwise: GET it; an answer carrying `X-Ctl-Sha256` and `X-Ctl-Seq` is the
 *    snapshot itself (the executive's `GET /v1/snapshot`), a JSON answer is a manifest.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Manifest,
  MANIFEST_BYTES_MAX,
  MANIFEST_NAME,
  parseManifest,
  SEQ_HEADER,
  SHA256_HEADER,
} from "../supervisor/manifest.ts";
import { BootstrapError } from "./errors.ts";

/** An opened snapshot: what was published about it, and its bytes. */
export interface SnapshotSource {
  /** Where the bytes come from (for messages). */
  where: string;
  seq: number;
  /** SHA-256 (hex) of the gzipped bytes, as published. */
  sha256: string;
  /** Size of the gzipped bytes, when known up front. */
  sizeBytes?: number;
  /** Decompressed size, when published. */
  ldbSizeBytes?: number;
  body: ReadableStream<Uint8Array>;
}

/** How to open a source. */
export interface OpenOptions {
  fetch: typeof fetch;
  signal: AbortSignal;
}

function parsed(text: string, where: string): Manifest {
  const result = parseManifest(text);
  if ("problem" in result) {
    throw new BootstrapError("bad_manifest", `Manifest ${where} is invalid: ${result.problem}`);
  }
  return result.manifest;
}

function fetchError(action: string, e: unknown): BootstrapError {
  if (e instanceof BootstrapError) return e;
  if (e instanceof DOMException && e.name === "AbortError") {
    return new BootstrapError("aborted", `${action}: aborted`, { cause: e });
  }
  return new BootstrapError("fetch_failed", `${action}: ${(e as Error).message ?? e}`, {
    cause: e,
  });
}

/** Opens the newest snapshot behind `url`. */
export async function openSnapshotSource(
  url: string,
  options: OpenOptions,
): Promise<SnapshotSource> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BootstrapError("bad_url", `Bootstrap URL "${url}" is not a URL`);
  }
  if (u.protocol === "file:") return await openFile(fileURLToPath(u));
  if (u.protocol === "http:" || u.protocol === "https:") return await openHttp(u, options);
  throw new BootstrapError(
    "bad_url",
    `Bootstrap URL "${url}" must start with file://, http:// or https://`,
  );
}

async function openFile(path: string): Promise<SnapshotSource> {
  let manifestPath = path;
  try {
    if ((await Deno.stat(path)).isDirectory) manifestPath = join(path, MANIFEST_NAME);
    const { size } = await Deno.stat(manifestPath);
    if (size > MANIFEST_BYTES_MAX) {
      throw new BootstrapError("bad_manifest", `Manifest "${manifestPath}" is too large`);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new BootstrapError("not_found", `No snapshot published at "${path}" (no manifest)`);
    }
    throw fetchError(`Cannot read "${manifestPath}"`, e);
  }
  let manifest: Manifest;
  let file: Deno.FsFile;
  const snapshotPath = join(manifestPath, "..");
  try {
    manifest = parsed(await Deno.readTextFile(manifestPath), `"${manifestPath}"`);
    file = await Deno.open(join(snapshotPath, manifest.file), { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      // Pruned between reading the manifest and opening the file: the next try sees the new one.
      throw new BootstrapError("not_found", `Snapshot named by "${manifestPath}" is gone`);
    }
    throw fetchError(`Cannot read snapshot at "${path}"`, e);
  }
  return {
    where: join(snapshotPath, manifest.file),
    seq: manifest.seq,
    sha256: manifest.sha256,
    sizeBytes: manifest.sizeBytes,
    ldbSizeBytes: manifest.ldbSizeBytes,
    body: file.readable,
  };
}

async function get(url: string, options: OpenOptions): Promise<Response> {
  let res: Response;
  try {
    res = await options.fetch(url, { signal: options.signal });
  } catch (e) {
    throw fetchError(`GET ${url}`, e);
  }
  if (res.ok) return res;
  await res.body?.cancel();
  if (res.status === 404) throw new BootstrapError("not_found", `No snapshot at ${url} (404)`);
  throw new BootstrapError("fetch_failed", `GET ${url}: HTTP ${res.status}`);
}

async function readLimited(res: Response, url: string): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > MANIFEST_BYTES_MAX) {
    await res.body?.cancel();
    throw new BootstrapError("bad_manifest", `Manifest at ${url} is too large (${declared} bytes)`);
  }
  const text = await res.text();
  if (text.length > MANIFEST_BYTES_MAX) {
    throw new BootstrapError("bad_manifest", `Manifest at ${url} is too large`);
  }
  return text;
}

function fromHeaders(res: Response, url: string): SnapshotSource {
  const sha256 = (res.headers.get(SHA256_HEADER) ?? "").toLowerCase();
  const seqText = res.headers.get(SEQ_HEADER) ?? "";
  if (!/^[0-9a-f]{64}$/.test(sha256) || !/^\d{1,16}$/.test(seqText) || !res.body) {
    res.body?.cancel();
    throw new BootstrapError(
      "bad_manifest",
      `Snapshot at ${url} has no valid ${SHA256_HEADER} / ${SEQ_HEADER} headers`,
    );
  }
  const length = res.headers.get("content-length");
  return {
    where: url,
    seq: Number(seqText),
    sha256,
    sizeBytes: length !== null && /^\d+$/.test(length) ? Number(length) : undefined,
    body: res.body,
  };
}

async function openHttp(u: URL, options: OpenOptions): Promise<SnapshotSource> {
  const first = u.href.endsWith("/") ? u.href + MANIFEST_NAME : u.href;
  const res = await get(first, options);
  if (res.headers.has(SHA256_HEADER)) return fromHeaders(res, first);
  const manifest = parsed(await readLimited(res, first), `at ${first}`);
  const fileUrl = new URL(manifest.file, first).href;
  const body = await get(fileUrl, options);
  if (!body.body) throw new BootstrapError("fetch_failed", `GET ${fileUrl}: empty body`);
  return {
    where: fileUrl,
    seq: manifest.seq,
    sha256: manifest.sha256,
    sizeBytes: manifest.sizeBytes,
    ldbSizeBytes: manifest.ldbSizeBytes,
    body: body.body,
  };
}
