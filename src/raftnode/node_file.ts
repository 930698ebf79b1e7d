/**
 * `node.json` in the data directory: the member's id and the peer registry (id → URL).
 * Its presence means "this directory belongs to an initialised member": restart needs nothing
 * else. Written atomically on every change.
 */

import type { NodeId } from "../../raft/types.ts";
import { ensureDir, writeFileAtomic } from "../util/durable_file.ts";

/** The persisted identity of a member. */
export interface NodeFile {
  id: NodeId;
  peers: Record<NodeId, string>;
  /** The log store kind used by this directory. */
  storage: "segment" | "sqlite";
  /**
   * The voters of a new cluster, kept so that a member that crashed before persisting anything
   * bootstraps again identically; null for a member that joined an existing cluster.
   */
  initialVoters: NodeId[] | null;
}

/** Reads `dir/node.json`, or returns null when the directory holds no member yet. */
export async function readNodeFile(dir: string): Promise<NodeFile | null> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(`${dir}/node.json`));
    if (typeof parsed?.id !== "string" || typeof parsed?.peers !== "object") {
      throw new Error(`Cannot read ${dir}/node.json: missing id or peers`);
    }
    return {
      id: parsed.id,
      peers: parsed.peers,
      storage: parsed.storage ?? "segment",
      initialVoters: parsed.initialVoters ?? null,
    };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** Writes `dir/node.json` atomically. */
export async function writeNodeFile(dir: string, file: NodeFile): Promise<void> {
  await ensureDir(dir);
  await writeFileAtomic(
    `${dir}/node.json`,
    new TextEncoder().encode(JSON.stringify(file, null, 2) + "\n"),
  );
}
