/**
 * Test helpers for snapshot and bootstrap tests: a real LDB written through the reflector's
 * writer, with a table of rows whose payload size is chosen by the test.
 */
import { LdbWriter } from "../ldb/writer.ts";

/** The family and table the helpers write. */
export const TEST_FAMILY = "fam";
export const TEST_TABLE = "rows";
/** The physical table name in the LDB. */
export const TEST_PHYSICAL_TABLE = "fam___rows";

/** Opens (or creates) an LDB at `path` with the test table; the caller closes the writer. */
export function openTestLdb(path: string): LdbWriter {
  const writer = LdbWriter.open(path);
  if (writer.seq === 0) {
    writer.applyBatch([{
      seq: 1,
      ts: Date.now(),
      family: null,
      ops: [{
        op: "create_table",
        family: TEST_FAMILY,
        table: TEST_TABLE,
        fields: [["id", "integer"], ["payload", "text"]],
        keyFields: ["id"],
      }],
    }]);
  }
  return writer;
}

/** Appends one ledger entry upserting `rows` rows (ids from `firstId`); returns the new seq. */
export function writeRows(
  writer: LdbWriter,
  firstId: number,
  rows: number,
  payloadBytes = 100,
): number {
  const seq = writer.seq + 1;
  const ops = [];
  for (let i = 0; i < rows; i++) {
    const id = firstId + i;
    ops.push({
      op: "upsert" as const,
      family: TEST_FAMILY,
      table: TEST_TABLE,
      values: { id, payload: `${id}:`.padEnd(payloadBytes, String.fromCharCode(97 + (id % 26))) },
    });
  }
  writer.applyBatch([{ seq, ts: Date.now(), family: null, ops }]);
  return seq;
}
