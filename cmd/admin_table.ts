/**
 * `ctl table create|add-fields|drop|clear`: table schema changes through the executive.
 * Fields are `name:type` pairs, given as arguments or as `--field` (comma-separated).
 */
import type { FieldTuple } from "../src/ledger/types.ts";
import type { CommandSpec, FlagSpec } from "./cli.ts";
import { UsageError } from "./cli.ts";
import { ADMIN_FLAGS, adminClient, printWrite } from "./admin_common.ts";

const FIELD_FLAG: FlagSpec = {
  name: "field",
  type: "list",
  help:
    "fields as name:type, repeatable or comma-separated (types: string, integer, decimal, text, binary, " +
    "bytestring); may also be given as arguments",
  placeholder: "NAME:TYPE[,…]",
};

/**
 * Parses `name:type` pairs. Type names are checked by the executive, which knows the rules;
 * here only the shape is checked, so the message can point at the flag.
 */
export function parseFieldSpecs(specs: readonly string[]): FieldTuple[] {
  return specs.map((spec) => {
    const m = /^([^:\s]+):([^:\s]+)$/.exec(spec.trim());
    if (!m) throw new UsageError(`field "${spec}" must look like name:type, e.g. id:string`);
    return [m[1], m[2]] as unknown as FieldTuple;
  });
}

/** Collects fields from arguments and (repeatable, comma-separated) `--field`. */
function collectFields(opts: Record<string, unknown>, positional: unknown): FieldTuple[] {
  const fromFlag = (opts.field as string[] | undefined) ?? [];
  const specs = [...((positional as string[] | undefined) ?? []), ...fromFlag];
  if (specs.length === 0) throw new UsageError("no fields given (e.g. id:string n:integer)");
  return parseFieldSpecs(specs);
}

/** The `ctl table` command group. */
export const tableCommand: CommandSpec = {
  name: "table",
  summary: "create, extend, drop and clear tables",
  subcommands: [
    {
      name: "create",
      summary: "create a table",
      description: "Creates FAMILY.TABLE with the given fields and key, e.g.\n" +
        "  ctl table create fam users id:string n:integer --key id",
      args: ["<family>", "<table>", "[fields...]"],
      flags: [
        FIELD_FLAG,
        {
          name: "key",
          type: "list",
          help: "key fields in key order, comma-separated",
          required: true,
          placeholder: "FIELD[,…]",
        },
        ...ADMIN_FLAGS,
      ],
      run: async (opts, args) => {
        const [family, table, positional] = args as [string, string, string[]];
        const fields = collectFields(opts, positional);
        const keys = opts.key as string[];
        const { seq } = await adminClient(opts).createTable(family, table, fields, keys);
        printWrite(`Created table "${family}.${table}"`, seq);
      },
    },
    {
      name: "add-fields",
      summary: "add nullable fields to a table",
      args: ["<family>", "<table>", "[fields...]"],
      flags: [FIELD_FLAG, ...ADMIN_FLAGS],
      run: async (opts, args) => {
        const [family, table, positional] = args as [string, string, string[]];
        const fields = collectFields(opts, positional);
        const { seq } = await adminClient(opts).addFields(family, table, fields);
        printWrite(`Added ${fields.length} field(s) to "${family}.${table}"`, seq);
      },
    },
    {
      name: "drop",
      summary: "drop a table (the executive must allow destructive changes)",
      args: ["<family>", "<table>"],
      flags: ADMIN_FLAGS,
      run: async (opts, args) => {
        const [family, table] = args as [string, string];
        const { seq } = await adminClient(opts).dropTable(family, table);
        printWrite(`Dropped table "${family}.${table}"`, seq);
      },
    },
    {
      name: "clear",
      summary: "delete every row of a table, or of every table of a family (atomically)",
      args: ["<family>", "[table]"],
      flags: ADMIN_FLAGS,
      run: async (opts, args) => {
        const [family, table] = args as [string, string | undefined];
        const client = adminClient(opts);
        const { seq } = table
          ? await client.clearTable(family, table)
          : await client.clearFamily(family);
        printWrite(`Cleared ${table ? `table "${family}.${table}"` : `family "${family}"`}`, seq);
      },
    },
  ],
};
