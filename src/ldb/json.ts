/**
 * JSON encoding of LDB values, shared by the sidecar, `ctl get` and `ctl query`: blobs as standard
 * base64 (as ctlstore's sidecar answers), integers beyond 2^53 as decimal strings (the ledger's
 * canonical `Cell` encoding), everything else as is.
 */
import { Buffer } from "node:buffer";
import type { Row, RowValue } from "./reader.ts";

/** A JSON-safe column value. */
export type JsonValue = string | number | null;

/** Encodes one column value for JSON. */
export function valueToJson(value: RowValue | unknown): JsonValue {
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (typeof value === "bigint") {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value.toString();
  }
  if (typeof value === "number" || typeof value === "string") return value;
  return String(value);
}

/** Encodes a row for JSON, keeping column order. */
export function rowToJson(row: Row | Record<string, unknown>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(row)) out[k] = valueToJson(v);
  return out;
}
