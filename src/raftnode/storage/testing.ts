/**
 * Test helpers for code that damages segment files on purpose: a segment is preallocated, so
 * where its records end is found by scanning, not by its size.
 */
import { scanRecords } from "./record_codec.ts";

/** Where a segment's records end (the rest of a preallocated file is zeros). */
export async function segmentDataEnd(path: string): Promise<number> {
  return scanRecords(await Deno.readFile(path)).validBytes;
}

/** Overwrites `bytes` at `at` in place, as a torn or garbled write would leave them. */
export async function overwriteAt(path: string, at: number, bytes: Uint8Array): Promise<void> {
  const f = await Deno.open(path, { write: true });
  try {
    await f.seek(at, Deno.SeekMode.Start);
    await f.write(bytes);
  } finally {
    f.close();
  }
}
