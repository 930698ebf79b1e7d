/**
 * `ctl limits table|writer get|set|delete`: table size limits and writer rate limits.
 * `get` prints JSON in the executive's (ctlstore's) shapes.
 */
import type { CommandSpec } from "./cli.ts";
import { UsageError } from "./cli.ts";
import { ADMIN_FLAGS, adminClient, printWrite } from "./admin_common.ts";

function positive(value: unknown, flag: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`${flag} must be a positive integer, got ${value}`);
  }
  return value;
}

const tableLimits: CommandSpec = {
  name: "table",
  summary: "table size limits (bytes)",
  subcommands: [
    {
      name: "get",
      summary: "print the default and per-table limits, or one table's",
      args: ["[family]", "[table]"],
      flags: ADMIN_FLAGS,
      run: async (opts, args) => {
        const [family, table] = args as [string | undefined, string | undefined];
        const limits = await adminClient(opts).tableLimits();
        if (family && table) {
          const one = limits.tables.find((l) =>
            l.family === family.toLowerCase() && l.table === table.toLowerCase()
          );
          console.log(JSON.stringify(one ?? { family, table, ...limits.global, default: true }));
          return;
        }
        console.log(JSON.stringify(limits, null, 2));
      },
    },
    {
      name: "set",
      summary: "set a table's max and warn sizes",
      args: ["<family>", "<table>"],
      flags: [
        {
          name: "max-size",
          type: "int",
          help: "writes that grow the table past it get 507",
          required: true,
          placeholder: "BYTES",
        },
        {
          name: "warn-size",
          type: "int",
          help: "size that raises a warning (≤ max-size)",
          required: true,
          placeholder: "BYTES",
        },
        ...ADMIN_FLAGS,
      ],
      run: async (opts, args) => {
        const [family, table] = args as [string, string];
        const max = positive(opts.maxSize, "--max-size");
        const warn = positive(opts.warnSize, "--warn-size");
        const { seq } = await adminClient(opts).setTableLimit(family, table, max, warn);
        printWrite(`Set limit of "${family}.${table}": max ${max}, warn ${warn} bytes`, seq);
      },
    },
    {
      name: "delete",
      summary: "return a table to the default limit",
      args: ["<family>", "<table>"],
      flags: ADMIN_FLAGS,
      run: async (opts, args) => {
        const [family, table] = args as [string, string];
        const { seq } = await adminClient(opts).deleteTableLimit(family, table);
        printWrite(`Deleted limit of "${family}.${table}"`, seq);
      },
    },
  ],
};

const writerLimits: CommandSpec = {
  name: "writer",
  summary: "writer rate limits (rows per period, stored per minute)",
  subcommands: [
    {
      name: "get",
      summary: "print the default and per-writer limits, or one writer's",
      args: ["[writer]"],
      flags: ADMIN_FLAGS,
      run: async (opts, args) => {
        const [writer] = args as [string | undefined];
        const limits = await adminClient(opts).writerLimits();
        if (writer) {
          const one = limits.writers.find((l) => l.writer === writer);
          console.log(
            JSON.stringify(one ?? { writer, "rate-limit": limits.global, default: true }),
          );
          return;
        }
        console.log(JSON.stringify(limits, null, 2));
      },
    },
    {
      name: "set",
      summary: "set a writer's rate limit",
      args: ["<writer>"],
      flags: [
        {
          name: "amount",
          type: "int",
          help: "rows allowed per period",
          required: true,
          placeholder: "N",
        },
        { name: "period", type: "string", help: "period: 1s, 1m, 1h…", default: "1m" },
        ...ADMIN_FLAGS,
      ],
      run: async (opts, args) => {
        const [writer] = args as [string];
        const amount = positive(opts.amount, "--amount");
        const { seq } = await adminClient(opts).setWriterLimit(writer, amount, String(opts.period));
        printWrite(`Set rate limit of writer "${writer}": ${amount} per ${opts.period}`, seq);
      },
    },
    {
      name: "delete",
      summary: "return a writer to the default rate limit",
      args: ["<writer>"],
      flags: ADMIN_FLAGS,
      run: async (opts, args) => {
        const [writer] = args as [string];
        const { seq } = await adminClient(opts).deleteWriterLimit(writer);
        printWrite(`Deleted rate limit of writer "${writer}"`, seq);
      },
    },
  ],
};

/** The `ctl limits` command group. */
export const limitsCommand: CommandSpec = {
  name: "limits",
  summary: "table size limits and writer rate limits",
  subcommands: [tableLimits, writerLimits],
};
