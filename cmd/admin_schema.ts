/** `ctl schema FAMILY [TABLE]`: table schemas as JSON, in ctlstore's shape. */
import { ExecutiveClient } from "../src/client/executive_client.ts";
import type { CommandSpec } from "./cli.ts";
import { EXECUTIVE_FLAG, executiveUrls } from "./admin_common.ts";

/** The `ctl schema` command. */
export const schemaCommand: CommandSpec = {
  name: "schema",
  summary: "print the schema of a family or one table as JSON",
  args: ["<family>", "[table]"],
  flags: [EXECUTIVE_FLAG],
  run: async (opts, args) => {
    const [family, table] = args as [string, string | undefined];
    const client = new ExecutiveClient({ urls: executiveUrls(opts) });
    const schema = table
      ? await client.tableSchema(family, table)
      : await client.familySchema(family);
    console.log(JSON.stringify(schema, null, 2));
  },
};
