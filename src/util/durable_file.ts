/**
 * Durable file operations, for the Raft log and snapshots, settings files, LDB installation and
 * snapshot publication: data is fsynced before it is renamed into place, and the directory is
 * fsynced after, so after a crash a name points either at the old complete file or at the new
 * complete file, never at a partial one.
 */
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { writeAll } from "./write_all.ts";

/** fsyncs a file by path. */
export async function syncFile(path: string): Promise<void> {
  using file = await Deno.open(path, { read: true, write: true });
  await file.sync();
}

/** fsyncs a directory so a rename or unlink inside it survives power loss (Linux, macOS). */
export async function syncDir(dir: string): Promise<void> {
  using handle = await Deno.open(dir, { read: true });
  await handle.sync();
}

/** Creates `dir` (and parents) and makes its entry durable in the parent directory. */
export async function ensureDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await syncDir(dir);
  await syncDir(dirname(dir));
}

/** A temporary name beside `path` (same directory, so the final rename is atomic). */
export function tempPathBeside(path: string, tag = "tmp"): string {
  return join(dirname(path), `.${basename(path)}.${tag}-${crypto.randomUUID().slice(0, 8)}`);
}

/** Writes `data` to `path` atomically: temp file, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempPathBeside(path);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    using file = await Deno.open(tmp, { write: true, createNew: true });
    await writeAll(file, bytes);
    await file.sync();
  } catch (e) {
    await removeQuietly(tmp);
    throw e;
  }
  await Deno.rename(tmp, path);
  await syncDir(dirname(path));
}

/** Removes a file, ignoring "not found". */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** True when `path` exists (any kind of entry). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Flushing a large file every this many bytes keeps the kernel's dirty pages few, so the final
 * fsync is short and, on ext4 and similar journaling file systems, the LDB writer's own fsyncs
 * do not queue behind hundreds of megabytes of our writeback.
 */
export const SYNC_EVERY_BYTES = 2 * 1024 * 1024;

/**
 * A writable stream into an open file that writes every chunk fully and calls `fdatasync` every
 * `syncEveryBytes`. Closing the stream does not close the file (the caller owns it).
 */
export function fileSink(
  file: Deno.FsFile,
  syncEveryBytes = SYNC_EVERY_BYTES,
): WritableStream<Uint8Array> {
  let unsynced = 0;
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      await writeAll(file, chunk);
      unsynced += chunk.length;
      if (unsynced >= syncEveryBytes) {
        unsynced = 0;
        await file.syncData();
      }
    },
  });
}

/** SHA-256 (hex) and size of a stream of bytes, computed as they pass through. */
export class HashingCounter {
  readonly #hash = createHash("sha256");
  sizeBytes = 0;

  /** A pass-through stream that hashes and counts every chunk. */
  stream(onChunk?: (sizeBytes: number) => void): TransformStream<Uint8Array, Uint8Array> {
    return new TransformStream({
      transform: (chunk, controller) => {
        this.#hash.update(chunk);
        this.sizeBytes += chunk.byteLength;
        onChunk?.(this.sizeBytes);
        controller.enqueue(chunk);
      },
    });
  }

  /** The hex digest; call once, after the stream has ended. */
  digestHex(): string {
    return this.#hash.digest("hex");
  }
}
