/**
 * ctl's library surface for applications.
 * @module
 */
export type { Cell, FieldTuple, FieldType, LedgerEntry, LedgerOp } from "./src/ledger/types.ts";
export { physicalTableName } from "./src/ledger/types.ts";

// The reader library: read the host-local LDB in-process.
export { LdbReader, openLdb, SNAPSHOT_MAX_MS } from "./src/ldb/reader.ts";
export type {
  KeyValue,
  LdbReaderOptions,
  PrefixOptions,
  ReaderTableLayout,
  Row,
  RowPage,
  RowValue,
} from "./src/ldb/reader.ts";
export { LdbError } from "./src/ldb/errors.ts";
export type { LdbErrorCode } from "./src/ldb/errors.ts";
// Test helpers for apps: a temporary LDB with tables and rows.
export { createTestLdb } from "./src/ldb/testing.ts";
export type { TestLdb, TestTable } from "./src/ldb/testing.ts";
