/** `ctl writer register NAME --secret S`. */
import type { CommandSpec } from "./cli.ts";
import { ADMIN_FLAGS, adminClient, printWrite } from "./admin_common.ts";

/** The `ctl writer` command group. */
export const writerCommand: CommandSpec = {
  name: "writer",
  summary: "register writers",
  subcommands: [
    {
      name: "register",
      summary: "register a writer (same secret again succeeds; another secret is refused)",
      args: ["<name>"],
      flags: [
        {
          name: "secret",
          type: "string",
          help: "the writer's secret (3–100 characters)",
          required: true,
          placeholder: "SECRET",
        },
        ...ADMIN_FLAGS,
      ],
      run: async (opts, args) => {
        const [name] = args as [string];
        const { seq } = await adminClient(opts).registerWriter(name, String(opts.secret));
        printWrite(`Registered writer "${name}"`, seq);
      },
    },
  ],
};
