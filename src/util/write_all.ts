/**
 * Writes all of a buffer: `write` may take fewer bytes than offered (pipes, sockets, large
 * files), and a short write silently dropped is lost data.
 */

/** Something with Deno's `write` contract (files, connections). */
export interface AsyncWriter {
  write(p: Uint8Array): Promise<number>;
}

/** Something with Deno's `writeSync` contract (files, stdout). */
export interface SyncWriter {
  writeSync(p: Uint8Array): number;
}

/** Writes every byte of `data`, as many calls as it takes. */
export async function writeAll(w: AsyncWriter, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.length) written += await w.write(data.subarray(written));
}

/** Writes every byte of `data` with blocking calls. */
export function writeAllSync(w: SyncWriter, data: Uint8Array): void {
  let written = 0;
  while (written < data.length) written += w.writeSync(data.subarray(written));
}
