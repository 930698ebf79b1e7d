/** `ctl family create NAME`, `ctl family list`. */
import type { CommandSpec } from "./cli.ts";
import {
  ADMIN_FLAGS,
  adminClient,
  EXECUTIVE_FLAG,
  executiveUrls,
  printWrite,
} from "./admin_common.ts";
import { ExecutiveClient } from "../src/client/executive_client.ts";

/** The `ctl family` command group. */
export const familyCommand: CommandSpec = {
  name: "family",
  summary: "create and list families",
  subcommands: [
    {
      name: "create",
      summary: "create a family",
      args: ["<name>"],
      flags: ADMIN_FLAGS,
      run: async (opts, args) => {
        const [name] = args as [string];
        const { seq } = await adminClient(opts).createFamily(name);
        printWrite(`Created family "${name.toLowerCase()}"`, seq);
      },
    },
    {
      name: "list",
      summary: "list families, one per line",
      flags: [EXECUTIVE_FLAG],
      run: async (opts) => {
        const families = await new ExecutiveClient({ urls: executiveUrls(opts) }).families();
        for (const f of families) console.log(f);
      },
    },
  ],
};
