/**
 * The ledger: the totally ordered list of schema and data changes that every reflector follows.
 *
 * Ledger entries hold structured operations, not SQL text (see ARCHITECTURE.md): they are
 * validated once on the executive, then applied identically to the system of record and to
 * every LDB.
 */

/** The six ctlstore field types. */
export type FieldType = "string" | "integer" | "decimal" | "text" | "binary" | "bytestring";

/** A field as ctlstore's API spells it: `[name, type]`. */
export type FieldTuple = [name: string, type: FieldType];

/**
 * A cell value in canonical ledger encoding, after validation against the field type:
 * - `string`, `text`: a JSON string;
 * - `integer`: a JSON number when it is a safe integer, else a decimal string (e.g.
 *   "9223372036854775807"), always within the signed 64-bit range;
 * - `decimal`: a finite JSON number;
 * - `binary`, `bytestring`: a standard base64 string of the bytes;
 * - `null`: SQL NULL (never for a key field).
 */
export type Cell = string | number | null;

export type LedgerOp =
  | { op: "create_family"; family: string }
  | {
    op: "create_table";
    family: string;
    table: string;
    fields: FieldTuple[];
    keyFields: string[];
  }
  | { op: "add_fields"; family: string; table: string; fields: FieldTuple[] }
  | { op: "drop_table"; family: string; table: string }
  | { op: "clear_table"; family: string; table: string }
  /** Full-row replace: `values` holds every field of the table. */
  | { op: "upsert"; family: string; table: string; values: Record<string, Cell> }
  /** `key` holds exactly the key fields. */
  | { op: "delete"; family: string; table: string; key: Record<string, Cell> };

/** One committed change: applied atomically, in `seq` order, exactly once. */
export interface LedgerEntry {
  /** Contiguous from 1: no gaps, no repeats. */
  seq: number;
  /** The leader's clock at proposal, unix milliseconds. Never read a local clock at apply. */
  ts: number;
  /** The family the ops touch, or null when they span several (batch table creation). */
  family: string | null;
  ops: LedgerOp[];
}

/** The physical table name in the SoR and in the LDB, as ctlstore names it. */
export function physicalTableName(family: string, table: string): string {
  return `${family}___${table}`;
}
