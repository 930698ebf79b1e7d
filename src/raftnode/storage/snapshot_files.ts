/**
 * Snapshot files: `snap-<index>-<term>.snap` in a directory, published atomically.
 *
 * Layout: `[u32 metaBytes][meta JSON][data][u32 crc32 of everything before]` (little endian).
 * Only the newest snapshot is kept; a corrupt newest file is reported and skipped at load.
 */

import { crc32 } from "node:zlib";
import { getLogger } from "@logtape/logtape";
import type { Snapshot, SnapshotMeta } from "../../../raft/types.ts";
import { ensureDir, syncDir, writeFileAtomic } from "../../util/durable_file.ts";
import {
  DamagedFileError,
  readCheckedFileInWorker,
  writeFileAtomicInWorker,
} from "../../util/file_worker.ts";

const logger = getLogger(["ctl", "raftnode", "snapshot"]);
/** From this size a snapshot file is written on a worker thread (see file_worker.ts). */
export const WORKER_WRITE_MIN_BYTES = 1024 * 1024;
const NAME = /^snap-([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

/** The start of a file's body: `[u32 metaBytes][meta JSON]`; the data and the CRC-32 follow. */
function snapshotFileHead(meta: SnapshotMeta): Uint8Array[] {
  const json = new TextEncoder().encode(JSON.stringify(meta));
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, json.length, true);
  return [length, json];
}

/** The file's body: `[u32 metaBytes][meta JSON][data]`; the CRC-32 of it follows. */
function snapshotFileBody(snapshot: Snapshot): Uint8Array[] {
  return [...snapshotFileHead(snapshot.meta), snapshot.data];
}

/** Encodes a snapshot as one checksummed buffer. */
export function encodeSnapshotFile(snapshot: Snapshot): Uint8Array {
  const body = snapshotFileBody(snapshot);
  const bodyBytes = body.reduce((n, part) => n + part.length, 0);
  const out = new Uint8Array(bodyBytes + 4);
  let at = 0;
  for (const part of body) {
    out.set(part, at);
    at += part.length;
  }
  new DataView(out.buffer).setUint32(bodyBytes, crc32(out.subarray(0, bodyBytes)), true);
  return out;
}

/** Decodes a snapshot file, or returns null when it is truncated or corrupt. */
export function decodeSnapshotFile(buf: Uint8Array): Snapshot | null {
  if (buf.length < 8) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const bodyBytes = buf.length - 4;
  if (crc32(buf.subarray(0, bodyBytes)) !== view.getUint32(bodyBytes, true)) return null;
  const snap = decodeSnapshotBody(buf.subarray(0, bodyBytes));
  return snap === null ? null : { meta: snap.meta, data: snap.data.slice() };
}

/** Decodes a checked file body (`[u32 metaBytes][meta JSON][data]`); data is a view of `body`. */
function decodeSnapshotBody(body: Uint8Array): Snapshot | null {
  if (body.length < 4) return null;
  const metaBytes = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(0, true);
  if (4 + metaBytes > body.length) return null;
  try {
    const meta = JSON.parse(new TextDecoder().decode(body.subarray(4, 4 + metaBytes)));
    return { meta: meta as SnapshotMeta, data: body.subarray(4 + metaBytes) };
  } catch {
    return null;
  }
}

function fileName(meta: SnapshotMeta): string {
  const hex = (n: number) => n.toString(16).padStart(16, "0");
  return `snap-${hex(meta.index)}-${hex(meta.term)}.snap`;
}

/** The snapshot directory of one member. */
export class SnapshotFiles {
  private constructor(readonly dir: string) {}

  /** Opens (creating if needed) the snapshot directory. */
  static async open(dir: string): Promise<SnapshotFiles> {
    await ensureDir(dir);
    return new SnapshotFiles(dir);
  }

  private tail: Promise<void> = Promise.resolve();

  /** Publishes `snapshot` atomically, then removes older snapshot files and stray temporaries. */
  save(snapshot: Snapshot): Promise<void> {
    return this.queue(snapshot.meta, async (path) => {
      if (snapshot.data.length >= WORKER_WRITE_MIN_BYTES) {
        // The same bytes as encodeSnapshotFile, written (and checksummed) on a worker thread.
        await writeFileAtomicInWorker(path, snapshotFileBody(snapshot), { appendCrc32: true });
      } else {
        await writeFileAtomic(path, encodeSnapshotFile(snapshot));
      }
    });
  }

  /**
   * Publishes, like `save`, a snapshot whose data is `head` followed by the contents of the file
   * at `statePath`, copied by a worker: the state never enters this thread's memory.
   */
  saveFromFile(meta: SnapshotMeta, head: Uint8Array, statePath: string): Promise<void> {
    return this.queue(
      meta,
      (path) =>
        writeFileAtomicInWorker(path, [...snapshotFileHead(meta), head, { file: statePath }], {
          appendCrc32: true,
        }),
    );
  }

  /** Saves run one at a time (each removes the others' leftovers). */
  private queue(meta: SnapshotMeta, write: (path: string) => Promise<void>): Promise<void> {
    const run = this.tail.then(() => this.saveNow(meta, write));
    this.tail = run.catch(() => {});
    return run;
  }

  private async saveNow(meta: SnapshotMeta, write: (path: string) => Promise<void>): Promise<void> {
    const name = fileName(meta);
    await write(`${this.dir}/${name}`);
    let removed = false;
    for (const other of await this.list()) {
      if (other.name !== name && other.index <= meta.index) {
        await Deno.remove(`${this.dir}/${other.name}`);
        removed = true;
      }
    }
    for await (const e of Deno.readDir(this.dir)) {
      if (e.isFile && e.name.includes(".snap.tmp-")) {
        await Deno.remove(`${this.dir}/${e.name}`);
        removed = true;
      }
    }
    if (removed) await syncDir(this.dir);
  }

  /** The newest valid snapshot, or null. Corrupt files are logged and skipped, never trusted. */
  async loadNewest(): Promise<Snapshot | null> {
    const files = (await this.list()).sort((a, b) => b.index - a.index);
    for (const f of files) {
      const snap = await this.read(f);
      if (typeof snap !== "string") return snap;
      if (snap === "damaged") {
        logger.error("Snapshot file {file} is corrupt; ignoring it", { file: f.name });
      }
    }
    return null;
  }

  /**
   * The data of the snapshot at `index`, read back and checked; null when no file holds it any
   * more (a newer snapshot replaced it, perhaps while it was being read). A damaged file is an
   * error: it was whole when it was published.
   */
  async loadData(index: number): Promise<Uint8Array | null> {
    const f = (await this.list()).find((x) => x.index === index);
    if (f === undefined) return null;
    const snap = await this.read(f);
    if (snap === "missing") return null;
    if (snap === "damaged") {
      throw new Error(`Snapshot file ${this.dir}/${f.name} is damaged (snapshot ${index})`);
    }
    return snap.data;
  }

  /**
   * Reads and checks one snapshot file. From `WORKER_WRITE_MIN_BYTES` on, a worker reads it and
   * checks its CRC-32, and the data is a view of what it hands over: no copy, and no pass over
   * the bytes on this thread (a restart or a lagging follower would otherwise cost two copies of
   * the state in memory and a long hold of the event loop).
   */
  private async read(
    f: { name: string; index: number },
  ): Promise<Snapshot | "missing" | "damaged"> {
    const path = `${this.dir}/${f.name}`;
    let snap: Snapshot | null;
    try {
      if ((await Deno.stat(path)).size < WORKER_WRITE_MIN_BYTES) {
        snap = decodeSnapshotFile(await Deno.readFile(path));
      } else {
        const body = await readCheckedFileInWorker(path);
        if (body === null) return "missing";
        snap = decodeSnapshotBody(body);
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return "missing";
      if (err instanceof DamagedFileError) return "damaged";
      throw err;
    }
    return snap !== null && snap.meta.index === f.index ? snap : "damaged";
  }

  private async list(): Promise<{ name: string; index: number }[]> {
    const out: { name: string; index: number }[] = [];
    for await (const e of Deno.readDir(this.dir)) {
      const m = e.isFile ? NAME.exec(e.name) : null;
      if (m) out.push({ name: e.name, index: parseInt(m[1], 16) });
    }
    return out;
  }
}
