/**
 * Validation of names, table definitions and mutations, producing canonical ledger values.
 *
 * Pure functions: the HTTP layer calls them to fail fast, and the state machine calls them again
 * at apply (against the schema in force at that log position), so both give the same verdict.
 *
 * Decisions (see ARCHITECTURE.md):
 * - Names are lower-cased first, then checked against ctlstore's patterns; family and table
 *   names may not end in `_`, so `family___table` always splits unambiguously at the first `___`.
 * - Text values must be well-formed Unicode (no lone surrogates, which UTF-8 cannot carry) and
 *   may not contain NUL: SQLite's text functions stop at NUL, so SoR and LDB could disagree.
 *   Arbitrary bytes belong in `binary`/`bytestring` columns (base64 in JSON).
 * - `string` length counts Unicode code points (MySQL's VARCHAR(191) counts characters);
 *   `text` and byte limits count UTF-8 or decoded bytes.
 * - Integers are signed 64-bit: a JSON number must be a safe integer; larger values come as
 *   decimal strings and stay strings in the ledger.
 */
import { Buffer } from "node:buffer";
import type { Cell, FieldTuple, FieldType, LedgerOp } from "../ledger/types.ts";
import { CtlError } from "./errors.ts";

/** The six field types, in ctlstore's order. */
export const FIELD_TYPES: readonly FieldType[] = [
  "string",
  "integer",
  "decimal",
  "text",
  "binary",
  "bytestring",
];

/** Field types allowed in a primary key. */
export const KEY_FIELD_TYPES: readonly FieldType[] = ["string", "integer", "bytestring"];

/** Size limits of values and requests. */
export const VALUE_LIMITS = {
  stringCharsMax: 191,
  bytestringBytesMax: 255,
  textBytesMax: 512 * 1024,
  binaryBytesMax: 512 * 1024,
  cookieBytesMax: 1024,
  mutationsPerBatchMax: 100,
  fieldsPerTableMax: 500,
  tablesPerBatchMax: 100,
  idempotencyKeyCharsMax: 200,
} as const;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const NAME_PATTERN = /^[a-z][a-z0-9_]*$/;

/** A table's schema as ctlstore's API spells it. */
export interface TableSchema {
  family: string;
  name: string;
  /** In declaration order. */
  fields: FieldTuple[];
  /** In key order; each names a field of a key-capable type. */
  keyFields: string[];
}

/** A mutation as the HTTP API accepts it, after its shape (not its values) was checked. */
export interface RawMutation {
  table: string;
  delete: boolean;
  values: Record<string, unknown>;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") {
    return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  }
  if (typeof value === "object") return "an object";
  return String(value);
}

function checkName(
  kind: string,
  raw: unknown,
  minChars: number,
  maxChars: number,
  strict: boolean,
): string {
  if (typeof raw !== "string") {
    throw new CtlError("invalid_name", `Invalid ${kind} name ${describe(raw)}: not a string`);
  }
  const name = raw.toLowerCase();
  const why = name.length < minChars || name.length > maxChars
    ? `must be ${minChars} to ${maxChars} characters`
    : !NAME_PATTERN.test(name)
    ? "must start with a letter and contain only a-z, 0-9 and _"
    : strict && name.includes("__")
    ? `must not contain "__"`
    : strict && name.endsWith("_")
    ? `must not end with "_"`
    : null;
  if (why) throw new CtlError("invalid_name", `Invalid ${kind} name ${describe(raw)}: ${why}`);
  return name;
}

/** Lower-cases and validates a family name (3–30, no `__`, not ending in `_`). */
export function familyName(raw: unknown): string {
  return checkName("family", raw, 3, 30, true);
}

/** Lower-cases and validates a table name (3–50, no `__`, not ending in `_`). */
export function tableName(raw: unknown): string {
  return checkName("table", raw, 3, 50, true);
}

/** Lower-cases and validates a field name (1–64, `__` allowed). */
export function fieldName(raw: unknown): string {
  return checkName("field", raw, 1, 64, false);
}

function hasControlChars(s: string): boolean {
  // deno-lint-ignore no-control-regex
  return /[\u0000-\u001f\u007f]/.test(s);
}

/**
 * Validates a writer name (3–50 characters, any except control characters, since it travels in
 * an HTTP header). Case is kept: writer names are credentials, not schema.
 */
export function writerName(raw: unknown): string {
  if (typeof raw !== "string" || raw.length < 3 || raw.length > 50 || hasControlChars(raw)) {
    throw new CtlError(
      "invalid_name",
      `Invalid writer name ${describe(raw)}: must be 3 to 50 characters without control characters`,
    );
  }
  return raw;
}

/** Validates a writer secret (3–100 characters, no control characters). */
export function writerSecret(raw: unknown): string {
  if (typeof raw !== "string" || raw.length < 3 || raw.length > 100 || hasControlChars(raw)) {
    throw new CtlError(
      "bad_request",
      "Invalid writer secret: must be 3 to 100 characters without control characters",
    );
  }
  return raw;
}

/** Validates a field type name. */
export function fieldType(raw: unknown, field: string): FieldType {
  const type = typeof raw === "string" ? raw.toLowerCase() : raw;
  if (typeof type !== "string" || !FIELD_TYPES.includes(type as FieldType)) {
    throw new CtlError(
      "invalid_field_type",
      `Invalid type ${describe(raw)} for field "${field}": expected one of ${
        FIELD_TYPES.join(", ")
      }`,
    );
  }
  return type as FieldType;
}

/** Validates `[[name, type], …]`: tuples of two, valid names, known types, no duplicates. */
export function fieldTuples(raw: unknown, action: string): FieldTuple[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new CtlError("bad_request", `${action}: "fields" must be a non-empty array`);
  }
  if (raw.length > VALUE_LIMITS.fieldsPerTableMax) {
    throw new CtlError(
      "bad_request",
      `${action}: ${raw.length} fields, at most ${VALUE_LIMITS.fieldsPerTableMax} allowed`,
    );
  }
  const seen = new Set<string>();
  return raw.map((tuple) => {
    if (!Array.isArray(tuple) || tuple.length !== 2) {
      throw new CtlError(
        "bad_request",
        `${action}: field ${JSON.stringify(tuple)} must be a [name, type] pair`,
      );
    }
    const name = fieldName(tuple[0]);
    const type = fieldType(tuple[1], name);
    if (seen.has(name)) {
      throw new CtlError("bad_request", `${action}: field "${name}" is declared twice`);
    }
    seen.add(name);
    return [name, type] as FieldTuple;
  });
}

/** Validates a whole table definition: fields, and key fields that name key-capable fields. */
export function tableDefinition(
  family: unknown,
  table: unknown,
  fields: unknown,
  keyFields: unknown,
): TableSchema {
  const f = familyName(family);
  const t = tableName(table);
  const action = `Cannot create table "${t}" in family "${f}"`;
  const tuples = fieldTuples(fields, action);
  if (!Array.isArray(keyFields) || keyFields.length === 0) {
    throw new CtlError("bad_request", `${action}: "keyFields" must name at least one field`);
  }
  const types = new Map(tuples);
  const keys: string[] = [];
  for (const raw of keyFields) {
    const key = fieldName(raw);
    const type = types.get(key);
    if (!type) throw new CtlError("bad_request", `${action}: key field "${key}" is not a field`);
    if (!KEY_FIELD_TYPES.includes(type)) {
      throw new CtlError(
        "bad_request",
        `${action}: key field "${key}" has type ${type}; keys must be ${
          KEY_FIELD_TYPES.join(", ")
        }`,
      );
    }
    if (keys.includes(key)) {
      throw new CtlError("bad_request", `${action}: key field "${key}" is listed twice`);
    }
    keys.push(key);
  }
  return { family: f, name: t, fields: tuples, keyFields: keys };
}

function checkText(s: string, what: () => string): void {
  if (!s.isWellFormed()) {
    throw new CtlError("invalid_value", `Invalid value for ${what()}: not well-formed Unicode`);
  }
  if (s.includes("\u0000")) {
    throw new CtlError(
      "invalid_value",
      `Invalid value for ${what()}: contains a NUL character (use a binary field for bytes)`,
    );
  }
}

const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes standard base64 (padding optional); throws `invalid_value` naming `what`. */
export function decodeBase64(value: string, what: string): Uint8Array {
  const unpadded = value.replace(/=+$/, "");
  if (!BASE64_PATTERN.test(value) || unpadded.length % 4 === 1) {
    throw new CtlError("invalid_value", `Invalid value for ${what}: not a base64 string`);
  }
  return new Uint8Array(Buffer.from(value, "base64"));
}

/** Encodes bytes as standard padded base64. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** Validates one value against its field type and size; returns the canonical ledger cell. */
export function canonicalCell(field: string, type: FieldType, value: unknown): Cell {
  if (value === null) return null;
  // Built only on failure: this runs for every cell of every mutation, twice (leader, apply).
  const what = () => `field "${field}" (${type})`;
  const wrong = (expected: string) =>
    new CtlError(
      "invalid_value",
      `Invalid value for ${what()}: expected ${expected}, got ${describe(value)}`,
    );
  switch (type) {
    case "string": {
      if (typeof value !== "string") throw wrong("a string");
      checkText(value, what);
      // UTF-16 units never undercount code points, so a short string needs no counting.
      if (value.length <= VALUE_LIMITS.stringCharsMax) return value;
      let chars = 0;
      for (const _ of value) chars++;
      if (chars > VALUE_LIMITS.stringCharsMax) {
        throw new CtlError(
          "invalid_value",
          `Invalid value for ${what()}: ${chars} characters, at most ${VALUE_LIMITS.stringCharsMax}`,
        );
      }
      return value;
    }
    case "text": {
      if (typeof value !== "string") throw wrong("a string");
      checkText(value, what);
      const bytes = utf8Bytes(value);
      if (bytes > VALUE_LIMITS.textBytesMax) {
        throw new CtlError(
          "invalid_value",
          `Invalid value for ${what()}: ${bytes} bytes, at most ${VALUE_LIMITS.textBytesMax}`,
        );
      }
      return value;
    }
    case "integer": {
      if (typeof value === "number") {
        if (!Number.isInteger(value)) throw wrong("an integer");
        if (!Number.isSafeInteger(value)) {
          throw new CtlError(
            "invalid_value",
            `Invalid value for ${what()}: ${value} is beyond 2^53 and may have lost precision; ` +
              "send it as a decimal string",
          );
        }
        return value === 0 ? 0 : value; // -0 is 0 in the log's JSON: every replica stores 0
      }
      if (typeof value === "string" && /^-?\d{1,20}$/.test(value)) {
        const big = BigInt(value);
        if (big < INT64_MIN || big > INT64_MAX) {
          throw new CtlError(
            "invalid_value",
            `Invalid value for ${what()}: ${value} is outside the signed 64-bit range`,
          );
        }
        const n = Number(big);
        return Number.isSafeInteger(n) ? n : big.toString();
      }
      throw wrong("an integer (a number, or a decimal string beyond 2^53)");
    }
    case "decimal": {
      if (typeof value !== "number" || !Number.isFinite(value)) throw wrong("a finite number");
      return value === 0 ? 0 : value; // -0 as for integers
    }
    case "binary":
    case "bytestring": {
      if (typeof value !== "string") throw wrong("a base64 string");
      const bytes = decodeBase64(value, what());
      const max = type === "binary" ? VALUE_LIMITS.binaryBytesMax : VALUE_LIMITS.bytestringBytesMax;
      if (bytes.length > max) {
        throw new CtlError(
          "invalid_value",
          `Invalid value for ${what()}: ${bytes.length} bytes, at most ${max}`,
        );
      }
      return encodeBase64(bytes);
    }
  }
}

/** The stored size of a canonical cell in bytes, as the table size limit counts it. */
export function cellSizeBytes(type: FieldType, cell: Cell): number {
  if (cell === null) return 0;
  switch (type) {
    case "integer":
    case "decimal":
      return 8;
    case "binary":
    case "bytestring":
      return Buffer.byteLength(cell as string, "base64");
    default:
      return utf8Bytes(cell as string);
  }
}

function lowerCaseKeys(
  values: Record<string, unknown>,
  action: () => string,
): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const raw in values) {
    if (!Object.hasOwn(values, raw)) continue;
    const name = raw.toLowerCase();
    if (out.has(name)) {
      throw new CtlError("bad_request", `${action()}: field "${name}" is given twice`);
    }
    out.set(name, values[raw]);
  }
  return out;
}

/** What validating a row needs of a schema, derived once per schema object. */
interface RowShape {
  types: Map<string, FieldType>;
  keys: Set<string>;
}

const rowShapes = new WeakMap<TableSchema, RowShape>();

function rowShape(schema: TableSchema): RowShape {
  let shape = rowShapes.get(schema);
  if (!shape) {
    shape = { types: new Map(schema.fields), keys: new Set(schema.keyFields) };
    rowShapes.set(schema, shape);
  }
  return shape;
}

/** Validates a full-row upsert: every field present, no unknown field, no null key. */
export function upsertValues(
  schema: TableSchema,
  values: Record<string, unknown>,
): Record<string, Cell> {
  const action = () => `Cannot upsert into table "${schema.name}"`;
  const given = lowerCaseKeys(values, action);
  const { types, keys } = rowShape(schema);
  for (const name of given.keys()) {
    if (!types.has(name)) {
      throw new CtlError("unknown_field", `${action()}: unknown field "${name}"`);
    }
  }
  const out: Record<string, Cell> = {};
  for (const [name, type] of schema.fields) {
    if (!given.has(name)) {
      throw new CtlError(
        "missing_field",
        `${action()}: field "${name}" is missing (an upsert replaces the whole row)`,
      );
    }
    const cell = canonicalCell(name, type, given.get(name));
    if (cell === null && keys.has(name)) {
      throw new CtlError("invalid_value", `${action()}: key field "${name}" is null`);
    }
    out[name] = cell;
  }
  return out;
}

/** Validates a delete: exactly the key fields, none null. */
export function deleteKey(
  schema: TableSchema,
  values: Record<string, unknown>,
): Record<string, Cell> {
  const action = () => `Cannot delete from table "${schema.name}"`;
  const given = lowerCaseKeys(values, action);
  const { types, keys } = rowShape(schema);
  for (const name of given.keys()) {
    if (!keys.has(name)) {
      throw new CtlError(
        types.has(name) ? "bad_request" : "unknown_field",
        `${action()}: "${name}" is not a key field; a delete names exactly the key fields ${
          JSON.stringify(schema.keyFields)
        }`,
      );
    }
  }
  const out: Record<string, Cell> = {};
  for (const name of schema.keyFields) {
    if (!given.has(name)) {
      throw new CtlError("missing_field", `${action()}: key field "${name}" is missing`);
    }
    const cell = canonicalCell(name, types.get(name)!, given.get(name));
    if (cell === null) {
      throw new CtlError("invalid_value", `${action()}: key field "${name}" is null`);
    }
    out[name] = cell;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Rejects keys of `obj` outside `allowed`, naming the first one. */
export function rejectUnknownKeys(
  obj: Record<string, unknown>,
  allowed: readonly string[],
  action: string | (() => string),
): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new CtlError(
        "unknown_field",
        `${typeof action === "string" ? action : action()}: unknown field "${key}" (expected ${
          allowed.join(", ")
        })`,
      );
    }
  }
}

const MUTATION_KEYS = ["table", "delete", "values"] as const;

/** Checks the shape of a mutations array (not the values): at most 100 `{table, delete, values}`. */
export function rawMutations(raw: unknown, family: string): RawMutation[] {
  const action = `Cannot apply mutations to family "${family}"`;
  if (!Array.isArray(raw)) {
    throw new CtlError("bad_request", `${action}: "mutations" must be an array`);
  }
  if (raw.length > VALUE_LIMITS.mutationsPerBatchMax) {
    throw new CtlError(
      "too_many_mutations",
      `${action}: ${raw.length} mutations, at most ${VALUE_LIMITS.mutationsPerBatchMax} per request`,
    );
  }
  return raw.map((m, i) => {
    if (!isPlainObject(m)) {
      throw new CtlError("bad_request", `${action}: mutation ${i} must be an object`);
    }
    rejectUnknownKeys(m, MUTATION_KEYS, () => `${action}: mutation ${i}`);
    if (typeof m.table !== "string") {
      throw new CtlError("bad_request", `${action}: mutation ${i} has no "table"`);
    }
    if (m.delete !== undefined && typeof m.delete !== "boolean") {
      throw new CtlError("bad_request", `${action}: mutation ${i}: "delete" must be a boolean`);
    }
    if (!isPlainObject(m.values)) {
      throw new CtlError("bad_request", `${action}: mutation ${i}: "values" must be an object`);
    }
    return { table: m.table, delete: m.delete === true, values: m.values };
  });
}

/**
 * Validates a batch of mutations against the schema and returns its ledger ops. Throws on an
 * unknown table, any bad value, or the same key twice in the batch (its outcome would depend on
 * order within one atomic batch, which is almost always a writer's bug).
 */
export function mutationOps(
  family: string,
  mutations: readonly RawMutation[],
  schemaOf: (table: string) => TableSchema | undefined,
): LedgerOp[] {
  if (mutations.length > VALUE_LIMITS.mutationsPerBatchMax) {
    throw new CtlError(
      "too_many_mutations",
      `Cannot apply mutations to family "${family}": ${mutations.length} mutations, at most ${VALUE_LIMITS.mutationsPerBatchMax}`,
    );
  }
  const seenKeys = new Set<string>();
  // A batch names few tables, usually one: check each name and look its schema up once.
  const tables = new Map<string, { table: string; schema: TableSchema | undefined }>();
  return mutations.map((m) => {
    let named = tables.get(m.table);
    if (!named) {
      const table = tableName(m.table);
      named = { table, schema: schemaOf(table) };
      tables.set(m.table, named);
    }
    const { table, schema } = named;
    if (!schema) {
      throw new CtlError(
        "table_not_found",
        `Cannot apply mutation: table "${table}" does not exist in family "${family}"`,
      );
    }
    const op: LedgerOp = m.delete
      ? { op: "delete", family, table, key: deleteKey(schema, m.values) }
      : { op: "upsert", family, table, values: upsertValues(schema, m.values) };
    const cells = op.op === "delete" ? op.key : op.values;
    const identity = schema.keyFields.length === 1
      ? `${table}\u0000${typeof cells[schema.keyFields[0]]}\u0000${cells[schema.keyFields[0]]}`
      : JSON.stringify([table, schema.keyFields.map((k) => cells[k])]);
    if (seenKeys.has(identity)) {
      throw new CtlError(
        "duplicate_key",
        `Cannot apply mutations to family "${family}": table "${table}" key ${
          JSON.stringify(schema.keyFields.map((k) => cells[k]))
        } appears twice in one batch`,
      );
    }
    seenKeys.add(identity);
    return op;
  });
}

/** Validates an opaque cookie (≤ 1024 bytes). */
export function cookieBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.length > VALUE_LIMITS.cookieBytesMax) {
    throw new CtlError(
      "bad_request",
      `Invalid cookie: ${bytes.length} bytes, at most ${VALUE_LIMITS.cookieBytesMax}`,
    );
  }
  return bytes;
}

/** Validates an `Idempotency-Key` header value: 1–200 printable ASCII characters. */
export function idempotencyKey(raw: string): string {
  if (
    raw.length < 1 || raw.length > VALUE_LIMITS.idempotencyKeyCharsMax ||
    !/^[\x21-\x7e]+$/.test(raw)
  ) {
    throw new CtlError(
      "bad_request",
      `Invalid Idempotency-Key ${
        describe(raw)
      }: must be 1 to ${VALUE_LIMITS.idempotencyKeyCharsMax} printable ASCII characters`,
    );
  }
  return raw;
}

const PERIOD_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Converts a rate limit `{amount, period}` to rows per minute, as ctlstore stores it
 * (1 per second → 60, 170 per second → 10200). Periods: `Ns`, `Nm`, `Nh` (N ≥ 1, default 1).
 */
export function rowsPerMinute(amount: unknown, period: unknown): number {
  const action = "Cannot set writer limit";
  if (typeof amount !== "number" || !Number.isSafeInteger(amount) || amount < 1) {
    throw new CtlError(
      "bad_request",
      `${action}: amount ${describe(amount)} must be a positive integer`,
    );
  }
  const m = typeof period === "string" ? /^(\d*)(s|m|h)$/.exec(period.trim()) : null;
  if (!m) {
    throw new CtlError(
      "bad_request",
      `${action}: period ${describe(period)} must look like 1s, 1m or 1h`,
    );
  }
  const periodMs = Number(m[1] || "1") * PERIOD_MS[m[2]];
  const perMinute = Math.floor((amount * 60_000) / periodMs);
  if (periodMs <= 0 || perMinute < 1 || !Number.isSafeInteger(perMinute)) {
    throw new CtlError(
      "bad_request",
      `${action}: ${amount} per ${period} is not a whole number of rows per minute of at least 1`,
    );
  }
  return perMinute;
}
