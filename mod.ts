/**
 * ctl's library surface for applications.
 * @module
 */
export type { Cell, FieldTuple, FieldType, LedgerEntry, LedgerOp } from "./src/ledger/types.ts";
export { physicalTableName } from "./src/ledger/types.ts";
