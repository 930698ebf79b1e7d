/**
 * Serving the newest published snapshot over HTTP, for the executive's `GET /v1/snapshot`:
 * the body is the gzipped LDB, and the manifest's facts travel as headers, so bootstrap needs
 * one request. 404 with a JSON error body when nothing is published.
 *
 *   200  Content-Type: application/gzip   Content-Length: <sizeBytes>
 *        X-Ctl-Seq: <seq>   X-Ctl-Sha256: <hex of the body>   X-Ctl-Created-At: <ISO 8601>
 */
import { join } from "node:path";
import { SnapshotError } from "./errors.ts";
import { CREATED_AT_HEADER, SEQ_HEADER, SHA256_HEADER } from "./manifest.ts";
import { FileTarget } from "./target.ts";

function jsonError(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status });
}

/** The response to `GET /v1/snapshot` for snapshots published into directory `dir`. */
export async function snapshotResponse(dir: string): Promise<Response> {
  let manifest;
  try {
    manifest = await new FileTarget(dir).readManifest();
  } catch (e) {
    const code = e instanceof SnapshotError ? e.code : "snapshot_unavailable";
    return jsonError(503, code, `Snapshot manifest unreadable: ${(e as Error).message}`);
  }
  if (!manifest) return jsonError(404, "snapshot_not_found", "No snapshot has been published");
  let file: Deno.FsFile;
  try {
    file = await Deno.open(join(dir, manifest.file), { read: true });
  } catch (e) {
    // Pruned between the manifest read and the open: the client retries and sees the new one.
    return jsonError(
      503,
      "snapshot_unavailable",
      `Snapshot file unreadable: ${(e as Error).message}`,
    );
  }
  return new Response(file.readable, {
    headers: {
      "content-type": "application/gzip",
      "content-length": String(manifest.sizeBytes),
      [SEQ_HEADER]: String(manifest.seq),
      [SHA256_HEADER]: manifest.sha256,
      [CREATED_AT_HEADER]: manifest.createdAt,
    },
  });
}
