/** `ctl cluster status|add|add-learner|promote|remove|transfer-leader`: executive membership through the API. */
import { ExecutiveClient } from "../src/client/executive_client.ts";
import type { CommandSpec } from "./cli.ts";
import { ADMIN_FLAGS, adminClient, EXECUTIVE_FLAG, executiveUrls } from "./admin_common.ts";

/** The `ctl cluster` command group. */
export const clusterCommand: CommandSpec = {
  name: "cluster",
  summary: "show and change executive membership",
  subcommands: [
    {
      name: "status",
      summary: "print an executive's view of the cluster as JSON",
      flags: [EXECUTIVE_FLAG],
      run: async (opts) => {
        const status = await new ExecutiveClient({ urls: executiveUrls(opts) }).status();
        console.log(JSON.stringify(status, null, 2));
      },
    },
    {
      name: "add",
      summary: "add an executive: it joins as a learner, then becomes a voter once caught up",
      args: ["<id>", "<url>"],
      flags: [
        { name: "learner", type: "bool", help: "keep it a non-voting learner" },
        ...ADMIN_FLAGS,
      ],
      run: async (opts, args) => {
        const [id, url] = args as [string, string];
        const m = await adminClient(opts).addMember(id, url, opts.learner !== true);
        console.log(`Added ${m.voter ? "voter" : "learner"} ${m.id} at ${m.url}`);
      },
    },
    {
      name: "add-learner",
      summary: "add an executive as a non-voting learner (promote it once caught up)",
      args: ["<id>", "<url>"],
      flags: ADMIN_FLAGS,
      run: async (opts, args) => {
        const [id, url] = args as [string, string];
        const m = await adminClient(opts).addMember(id, url, false);
        console.log(`Added learner ${m.id} at ${m.url}`);
      },
    },
    {
      name: "promote",
      summary: "make a learner a voter once it has caught up with the log",
      args: ["<id>"],
      flags: ADMIN_FLAGS,
      run: async (opts, args) => {
        const [id] = args as [string];
        await adminClient(opts).promoteMember(id);
        console.log(`Promoted ${id} to voter`);
      },
    },
    {
      name: "remove",
      summary: "remove an executive from the cluster",
      args: ["<id>"],
      flags: ADMIN_FLAGS,
      run: async (opts, args) => {
        const [id] = args as [string];
        await adminClient(opts).removeMember(id);
        console.log(`Removed ${id}`);
      },
    },
    {
      name: "transfer-leader",
      summary: "hand leadership to another executive",
      args: ["<id>"],
      flags: ADMIN_FLAGS,
      run: async (opts, args) => {
        const [id] = args as [string];
        await adminClient(opts).transferLeader(id);
        console.log(`Leader is now ${id}`);
      },
    },
  ],
};
