/** `ctl get --ldb FILE FAMILY TABLE KEY…`: one row by its full key, as JSON. */
import { rowToJson } from "../src/ldb/json.ts";
import { type KeyValue, openLdb } from "../src/ldb/reader.ts";
import type { CommandSpec } from "./cli.ts";

/** The row as a JSON line, or undefined when no row has this key. */
export function getRowJson(
  ldb: string,
  family: string,
  table: string,
  keyTexts: readonly string[],
): string | undefined {
  const reader = openLdb(ldb);
  try {
    const layout = reader.tableLayout(family, table);
    // Command-line keys are text: integer key parts become exact integers; bytestring key parts
    // are looked up as the UTF-8 bytes of the text, as ctlstore's reader does.
    const key: KeyValue[] = keyTexts.map((text, i) =>
      layout.keys[i]?.type === "integer" && /^-?\d+$/.test(text) ? BigInt(text) : text
    );
    const row = reader.getRowByKey(family, table, ...key);
    return row ? JSON.stringify(rowToJson(row)) : undefined;
  } finally {
    reader.close();
  }
}

/** The `ctl get` command. */
export const getCommand: CommandSpec = {
  name: "get",
  summary: "print one LDB row by its key",
  description: "Prints the row of FAMILY TABLE with the full key KEY… as a JSON object; " +
    "exits 1 when no row has this key.",
  args: ["<family>", "<table>", "<key...>"],
  flags: [
    { name: "ldb", type: "string", help: "LDB file", required: true, placeholder: "FILE" },
  ],
  run: (opts, args) => {
    const [family, table, key] = args as [string, string, string[]];
    const json = getRowJson(String(opts.ldb), family, table, key);
    if (json === undefined) {
      console.error(`Error: no row in ${family}.${table} with key ${key.join(", ")}`);
      return Promise.resolve(1);
    }
    console.log(json);
    return Promise.resolve(0);
  },
};
