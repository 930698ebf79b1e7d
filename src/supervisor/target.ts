/**
 * Where snapshots are published: a `file://` directory or an `http(s)://` prefix written with
 * PUT and DELETE (a WebDAV-style or object-store-style server that replaces an object atomically
 * on PUT). Both offer the same small interface so publication logic is written once.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SnapshotError } from "./errors.ts";
import {
  fileSink,
  removeQuietly,
  syncDir,
  tempPathBeside,
  writeFileAtomic,
} from "../util/durable_file.ts";
import { type Manifest, MANIFEST_BYTES_MAX, MANIFEST_NAME, parseManifest } from "./manifest.ts";

/** Per-request timeout of HTTP targets (a whole snapshot upload is one request). */
const HTTP_TIMEOUT_MS = 30 * 60_000;

/** Bytes being written under a name; invisible until `commit`. */
export interface Upload {
  readonly writable: WritableStream<Uint8Array>;
  /** Makes the bytes durable and visible under the name, atomically. */
  commit(): Promise<void>;
  /** Drops the bytes (after a failure); never throws. */
  abort(): Promise<void>;
}

/** A place snapshots are published to. */
export interface SnapshotTarget {
  /** The URL, for messages. */
  readonly url: string;
  /** The current `latest.json`, or undefined when nothing was published yet. */
  readManifest(): Promise<Manifest | undefined>;
  /** Starts writing the object `name`. */
  begin(name: string): Promise<Upload>;
  /** Writes a small object atomically. */
  putText(name: string, text: string, contentType: string): Promise<void>;
  /** Removes an object; absent is fine. */
  remove(name: string): Promise<void>;
  /** Every object name, when the target can list (file://); undefined otherwise. */
  list(): Promise<string[] | undefined>;
}

/** Opens the target for `--snapshot-url`. `stagingDir` holds uploads to HTTP before the PUT. */
export function openTarget(
  url: string,
  options: { stagingDir?: string; token?: string; fetch?: typeof fetch } = {},
): SnapshotTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SnapshotError("bad_target_url", `Snapshot URL "${url}" is not a URL`);
  }
  if (parsed.protocol === "file:") return new FileTarget(fileURLToPath(parsed));
  if (parsed.protocol === "http:" || parsed.protocol === "https:") {
    return new HttpTarget(parsed, options.stagingDir ?? Deno.env.get("TMPDIR") ?? "/tmp", options);
  }
  throw new SnapshotError(
    "bad_target_url",
    `Snapshot URL "${url}" must start with file://, http:// or https://`,
  );
}

function manifestFrom(text: string, where: string): Manifest {
  const parsed = parseManifest(text);
  if ("problem" in parsed) {
    throw new SnapshotError("bad_manifest", `Manifest ${where} is invalid: ${parsed.problem}`);
  }
  return parsed.manifest;
}

function publishError(action: string, e: unknown): SnapshotError {
  if (e instanceof SnapshotError) return e;
  const text = e instanceof Error ? e.message : String(e);
  return new SnapshotError("publish_failed", `${action}: ${text}`, { cause: e });
}

/** A directory on a local or mounted file system. */
export class FileTarget implements SnapshotTarget {
  readonly url: string;
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.url = `file://${dir}`;
  }

  async readManifest(): Promise<Manifest | undefined> {
    const path = join(this.dir, MANIFEST_NAME);
    let text: string;
    try {
      const { size } = await Deno.stat(path);
      if (size > MANIFEST_BYTES_MAX) {
        throw new SnapshotError("bad_manifest", `Manifest "${path}" is ${size} bytes: too large`);
      }
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw publishError(`Cannot read manifest "${path}"`, e);
    }
    return manifestFrom(text, `"${path}"`);
  }

  async begin(name: string): Promise<Upload> {
    const finalPath = join(this.dir, name);
    try {
      await Deno.mkdir(this.dir, { recursive: true });
    } catch (e) {
      throw publishError(`Cannot create snapshot directory "${this.dir}"`, e);
    }
    const tmp = tempPathBeside(finalPath);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(tmp, { write: true, createNew: true });
    } catch (e) {
      throw publishError(`Cannot create "${tmp}"`, e);
    }
    let closed = false;
    const writable = fileSink(file);
    const close = () => {
      if (!closed) {
        closed = true;
        file.close();
      }
    };
    return {
      writable,
      commit: async () => {
        try {
          await file.sync();
          close();
          await Deno.rename(tmp, finalPath);
          await syncDir(this.dir);
        } catch (e) {
          close();
          await removeQuietly(tmp);
          throw publishError(`Cannot publish "${finalPath}"`, e);
        }
      },
      abort: async () => {
        close();
        await removeQuietly(tmp).catch(() => {});
      },
    };
  }

  async putText(name: string, text: string): Promise<void> {
    try {
      await Deno.mkdir(this.dir, { recursive: true });
      await writeFileAtomic(join(this.dir, name), text);
    } catch (e) {
      throw publishError(`Cannot write "${join(this.dir, name)}"`, e);
    }
  }

  async remove(name: string): Promise<void> {
    try {
      await removeQuietly(join(this.dir, name));
    } catch (e) {
      throw publishError(`Cannot remove "${join(this.dir, name)}"`, e);
    }
  }

  async list(): Promise<string[]> {
    const names: string[] = [];
    try {
      for await (const entry of Deno.readDir(this.dir)) if (entry.isFile) names.push(entry.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw publishError(`Cannot list "${this.dir}"`, e);
    }
    return names;
  }
}

/**
 * An HTTP prefix: objects are `<prefix>/<name>`, written with PUT (chunked body), removed with
 * DELETE, read with GET. An optional bearer token goes in `Authorization`.
 */
export class HttpTarget implements SnapshotTarget {
  readonly url: string;
  readonly #base: string;
  readonly #stagingDir: string;
  readonly #headers: Headers;
  readonly #fetch: typeof fetch;

  constructor(
    url: URL,
    stagingDir: string,
    options: { token?: string; fetch?: typeof fetch } = {},
  ) {
    this.url = url.href;
    this.#base = url.href.endsWith("/") ? url.href : url.href + "/";
    this.#stagingDir = stagingDir;
    this.#headers = new Headers();
    if (options.token) this.#headers.set("authorization", `Bearer ${options.token}`);
    this.#fetch = options.fetch ?? fetch;
  }

  #objectUrl(name: string): string {
    return this.#base + encodeURIComponent(name);
  }

  async #send(method: string, name: string, body?: BodyInit, contentType?: string) {
    const headers = new Headers(this.#headers);
    if (contentType) headers.set("content-type", contentType);
    let res: Response;
    try {
      res = await this.#fetch(this.#objectUrl(name), {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      });
    } catch (e) {
      throw publishError(`${method} ${this.#objectUrl(name)}`, e);
    }
    return res;
  }

  async readManifest(): Promise<Manifest | undefined> {
    const res = await this.#send("GET", MANIFEST_NAME);
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new SnapshotError(
        "publish_failed",
        `GET ${this.#objectUrl(MANIFEST_NAME)}: HTTP ${res.status}`,
      );
    }
    const text = await res.text();
    if (text.length > MANIFEST_BYTES_MAX) {
      throw new SnapshotError("bad_manifest", `Manifest at ${this.url} is too large`);
    }
    return manifestFrom(text, `at ${this.#objectUrl(MANIFEST_NAME)}`);
  }

  async #check(res: Response, action: string, allow404 = false): Promise<void> {
    await res.body?.cancel();
    if (res.ok || (allow404 && res.status === 404)) return;
    throw new SnapshotError("publish_failed", `${action}: HTTP ${res.status}`);
  }

  async begin(name: string): Promise<Upload> {
    // Staged locally first: the gzip stream is produced faster than a remote PUT may take it,
    // and a failed compression never leaves a partial object on the server.
    await Deno.mkdir(this.#stagingDir, { recursive: true });
    const staged = join(this.#stagingDir, `.ctl-upload-${crypto.randomUUID().slice(0, 8)}-${name}`);
    const file = await Deno.open(staged, { write: true, createNew: true });
    let closed = false;
    const close = () => {
      if (!closed) {
        closed = true;
        file.close();
      }
    };
    return {
      writable: fileSink(file),
      commit: async () => {
        close();
        try {
          const source = await Deno.open(staged, { read: true });
          const res = await this.#send("PUT", name, source.readable, "application/gzip");
          await this.#check(res, `PUT ${this.#objectUrl(name)}`);
        } finally {
          await removeQuietly(staged).catch(() => {});
        }
      },
      abort: async () => {
        close();
        await removeQuietly(staged).catch(() => {});
      },
    };
  }

  async putText(name: string, text: string, contentType: string): Promise<void> {
    const res = await this.#send("PUT", name, text, contentType);
    await this.#check(res, `PUT ${this.#objectUrl(name)}`);
  }

  async remove(name: string): Promise<void> {
    const res = await this.#send("DELETE", name);
    await this.#check(res, `DELETE ${this.#objectUrl(name)}`, true);
  }

  list(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
}
