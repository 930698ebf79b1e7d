/** File-system helpers with the fsync discipline crash safety needs. */

import { writeAll } from "../../util/write_all.ts";

/** fsyncs a directory so that a file created, renamed or removed in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

/** Creates `dir` (and parents) and makes its entry durable in the parent directory. */
export async function ensureDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await fsyncDir(dir);
  const parent = dir.replace(/\/+[^/]+\/*$/, "") || "/";
  await fsyncDir(parent);
}

/**
 * Writes `data` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
 * A reader sees either the old content or the new one, never a mix, even after a crash. For
 * small files; a large one (a snapshot) is written on a worker (`src/util/file_worker.ts`).
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, data);
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
  await fsyncDir(dirname(path));
}

/** The directory part of a path. */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : path.slice(0, i);
}
