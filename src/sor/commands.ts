/**
 * Commands of the system of record: the payloads of Raft log entries.
 *
 * The leader builds a command from a request, stamps it with its clock (`ts`, unix ms) and
 * proposes it; every replica applies the same bytes and reaches the same verdict. Commands carry
 * what the user sent (after shape checks), not derived state: validation against the schema
 * happens again at apply, because the schema may change between proposal and commit.
 * Secrets never enter the log: the leader salts and hashes them first.
 */
import type { FieldTuple, LedgerOp } from "../ledger/types.ts";
import { CtlError } from "./errors.ts";
import type { ErrorBody } from "./errors.ts";
import { mutationOps, type RawMutation, type TableSchema } from "./validate.ts";

/** Fields every command carries. */
export interface CommandStamp {
  /** The leader's clock at proposal, unix milliseconds: the only time apply ever uses. */
  ts: number;
  /** Retries with the same key return the first successful result and apply nothing. */
  idempotencyKey?: string;
}

/** One command body, without its stamp. */
export type SorCommandBody =
  | { type: "create_family"; family: string }
  /** One or more tables, created atomically (all or none). */
  | { type: "create_tables"; tables: TableSchema[] }
  | { type: "add_fields"; family: string; table: string; fields: FieldTuple[] }
  | { type: "drop_table"; family: string; table: string }
  | { type: "clear_table"; family: string; table: string }
  /** Every table of the family, atomically. */
  | { type: "clear_family"; family: string }
  /** `saltHex`/`secretHashHex` from `hashSecret`; re-registering needs the same secret. */
  | { type: "register_writer"; writer: string; saltHex: string; secretHashHex: string }
  | { type: "set_cookie"; writer: string; cookieBase64: string }
  | {
    type: "mutate";
    family: string;
    writer: string;
    mutations: RawMutation[];
    /** Stored with the batch, atomically. */
    cookieBase64?: string;
    /** When set, the batch applies only if the writer's stored cookie equals it. */
    checkCookieBase64?: string;
  }
  | {
    type: "set_table_limit";
    family: string;
    table: string;
    maxSizeBytes: number;
    warnSizeBytes: number;
  }
  | { type: "delete_table_limit"; family: string; table: string }
  | { type: "set_writer_limit"; writer: string; rowsPerMinute: number }
  | { type: "delete_writer_limit"; writer: string };

/** A command as proposed to Raft. */
export type SorCommand = SorCommandBody & CommandStamp;

/** The command type names. */
export type SorCommandType = SorCommand["type"];

/**
 * What applying a command returned, identically on every replica. `seq` is the ledger entry the
 * change appended, or, for a change that appends none (writers, cookies, limits), the last seq
 * at that point, so a reader that waits for `seq` sees every write ordered before it.
 */
export type ApplyResult =
  | { ok: true; seq: number }
  | { ok: false; error: ErrorBody };

const COMMAND_TYPES: ReadonlySet<string> = new Set<SorCommandType>([
  "create_family",
  "create_tables",
  "add_fields",
  "drop_table",
  "clear_table",
  "clear_family",
  "register_writer",
  "set_cookie",
  "mutate",
  "set_table_limit",
  "delete_table_limit",
  "set_writer_limit",
  "delete_writer_limit",
]);

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * A command as the leader built it, handed to the leader's own apply beside its encoded bytes
 * (`StateMachineEntry.local`) so that the leader does not decode and validate one request twice.
 * Only a cache of what the bytes say, never different input: `cmd` is what `decodeCommand` of
 * `encodeCommand(cmd)` gives (it holds only JSON values, -0 aside, which no cell keeps), and
 * `mutation.ops` stand only while each table's schema is still the very object they were
 * validated against (a schema change replaces it); otherwise apply validates again.
 */
export class PreparedCommand {
  constructor(readonly cmd: SorCommand, readonly mutation?: PreparedMutation) {}
}

/** A mutate command's mutations as validated, with the schema object each table was read as. */
export interface PreparedMutation {
  ops: LedgerOp[];
  schemas: ReadonlyMap<string, TableSchema>;
}

/**
 * Validates mutations as apply does (`mutationOps`, throwing the same errors) and records every
 * schema the check read, so that apply can tell whether the result still stands.
 */
export function prepareMutation(
  family: string,
  mutations: readonly RawMutation[],
  schemaOf: (table: string) => TableSchema | undefined,
): PreparedMutation {
  const schemas = new Map<string, TableSchema>();
  const ops = mutationOps(family, mutations, (t) => {
    const schema = schemaOf(t);
    if (schema !== undefined) schemas.set(t, schema);
    return schema;
  });
  return { ops, schemas };
}

/** Encodes a command as a Raft entry payload (UTF-8 JSON). */
export function encodeCommand(cmd: SorCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

/**
 * Decodes a Raft entry payload. Checks the envelope (type, ts); field-level checks happen in
 * apply, which treats every field as untrusted. Throws `bad_request` on anything else.
 */
export function decodeCommand(data: Uint8Array): SorCommand {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch (e) {
    throw new CtlError("bad_request", `Cannot decode command: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CtlError("bad_request", "Cannot decode command: not a JSON object");
  }
  const cmd = parsed as Record<string, unknown>;
  if (typeof cmd.type !== "string" || !COMMAND_TYPES.has(cmd.type)) {
    throw new CtlError(
      "bad_request",
      `Cannot decode command: unknown type ${JSON.stringify(cmd.type)}`,
    );
  }
  if (typeof cmd.ts !== "number" || !Number.isSafeInteger(cmd.ts) || cmd.ts < 0) {
    throw new CtlError(
      "bad_request",
      `Cannot decode command ${cmd.type}: bad ts ${JSON.stringify(cmd.ts)}`,
    );
  }
  if (cmd.idempotencyKey !== undefined && typeof cmd.idempotencyKey !== "string") {
    throw new CtlError("bad_request", `Cannot decode command ${cmd.type}: bad idempotencyKey`);
  }
  return cmd as unknown as SorCommand;
}
