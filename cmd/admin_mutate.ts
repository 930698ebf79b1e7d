/**
 * `ctl mutate FAMILY --writer W --secret S [FILE|-]`: applies mutations from a JSON or NDJSON
 * file (or stdin) in batches of at most 100, printing the ledger seq of the last batch.
 *
 * Input: a JSON array of mutations, a JSON object `{"mutations":[…]}` (the request shape), or
 * NDJSON with one mutation `{"table", "delete"?, "values"}` per line. Each batch is atomic and
 * carries its own Idempotency-Key, so retries after a lost reply never apply a batch twice; a
 * failed batch stops the run, and the batches before it stay applied.
 */
import cliProgress from "cli-progress";
import { ExecutiveClient, type Mutation } from "../src/client/executive_client.ts";
import type { CommandSpec } from "./cli.ts";
import { UsageError } from "./cli.ts";
import { EXECUTIVE_FLAG, executiveUrls } from "./admin_common.ts";

/** Largest mutations file read, in bytes. */
export const INPUT_BYTES_MAX = 256 * 1024 * 1024;
/** Most mutations per batch (the executive's limit). */
export const BATCH_MUTATIONS_MAX = 100;
/** Largest batch body, kept under the executive's 1 MiB request limit. */
export const BATCH_BYTES_MAX = 900 * 1024;

function asMutation(value: unknown, where: string): Mutation {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(`${where}: a mutation must be an object {"table", "values"}`);
  }
  const m = value as Record<string, unknown>;
  if (typeof m.table !== "string" || typeof m.values !== "object" || m.values === null) {
    throw new UsageError(`${where}: a mutation needs "table" (string) and "values" (object)`);
  }
  return m as unknown as Mutation;
}

/** Parses a JSON array, a `{"mutations":[…]}` object, or NDJSON into mutations. */
export function parseMutationInput(text: string): Mutation[] {
  const trimmed = text.trim();
  if (trimmed.length === 0) return [];
  let whole: unknown = undefined;
  try {
    whole = JSON.parse(trimmed);
  } catch {
    // Not one JSON document: NDJSON below.
  }
  if (Array.isArray(whole)) return whole.map((m, i) => asMutation(m, `mutation ${i + 1}`));
  if (typeof whole === "object" && whole !== null && "mutations" in whole) {
    const list = (whole as { mutations: unknown }).mutations;
    if (!Array.isArray(list)) throw new UsageError(`"mutations" must be an array`);
    return list.map((m, i) => asMutation(m, `mutation ${i + 1}`));
  }
  const out: Mutation[] = [];
  const lines = trimmed.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line.length === 0) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new UsageError(`line ${i + 1}: not JSON (${(e as Error).message})`);
    }
    out.push(asMutation(value, `line ${i + 1}`));
  }
  return out;
}

/** Splits mutations into batches of at most `maxCount` and about `maxBytes` of JSON each. */
export function batchMutations(
  mutations: readonly Mutation[],
  maxCount = BATCH_MUTATIONS_MAX,
  maxBytes = BATCH_BYTES_MAX,
): Mutation[][] {
  const batches: Mutation[][] = [];
  let current: Mutation[] = [];
  let bytes = 0;
  for (const m of mutations) {
    const size = JSON.stringify(m).length + 1;
    if (current.length > 0 && (current.length >= maxCount || bytes + size > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

async function readInput(source: string): Promise<string> {
  let bytes: Uint8Array;
  if (source === "-") {
    bytes = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  } else {
    const info = await Deno.stat(source).catch(() => {
      throw new UsageError(`cannot read mutations file "${source}": it does not exist`);
    });
    if (info.size > INPUT_BYTES_MAX) {
      throw new UsageError(`mutations file "${source}" is over ${INPUT_BYTES_MAX} bytes`);
    }
    bytes = await Deno.readFile(source);
  }
  if (bytes.length > INPUT_BYTES_MAX) {
    throw new UsageError(`mutations input is over ${INPUT_BYTES_MAX} bytes`);
  }
  return new TextDecoder().decode(bytes);
}

/** Sends the batches in order; returns the seq of the last one (undefined when none). */
export async function sendBatches(
  client: ExecutiveClient,
  family: string,
  batches: readonly Mutation[][],
  onBatch: (done: number) => void = () => {},
): Promise<number | undefined> {
  let seq: number | undefined;
  let done = 0;
  for (const [i, batch] of batches.entries()) {
    try {
      seq = (await client.mutate(family, batch)).seq;
    } catch (e) {
      throw new Error(
        `batch ${i + 1} of ${batches.length} (mutations ${done + 1}–${done + batch.length}) ` +
          `failed; ${done} mutations before it were applied: ${(e as Error).message}`,
      );
    }
    done += batch.length;
    onBatch(done);
  }
  return seq;
}

/** The `ctl mutate` command. */
export const mutateCommand: CommandSpec = {
  name: "mutate",
  summary: "apply mutations from a JSON/NDJSON file or stdin, in batches of 100",
  description: "Applies the mutations in FILE (or stdin with -) to FAMILY as writer W, in atomic " +
    "batches of at most 100, and prints the ledger seq of the last batch.\n" +
    'Input: a JSON array of {"table","delete"?,"values"}, a {"mutations":[…]} object, or NDJSON.',
  args: ["<family>", "[file]"],
  flags: [
    { name: "writer", type: "string", help: "writer name", required: true, placeholder: "NAME" },
    {
      name: "secret",
      type: "string",
      help: "writer secret",
      required: true,
      placeholder: "SECRET",
    },
    EXECUTIVE_FLAG,
  ],
  run: async (opts, args) => {
    const [family, file] = args as [string, string | undefined];
    const mutations = parseMutationInput(await readInput(file ?? "-"));
    if (mutations.length === 0) throw new UsageError("no mutations in the input");
    const client = new ExecutiveClient({
      urls: executiveUrls(opts),
      writer: { name: String(opts.writer), secret: String(opts.secret) },
    });
    const batches = batchMutations(mutations);
    const bar = Deno.stderr.isTerminal()
      ? new cliProgress.SingleBar(
        { format: "mutations [{bar}] {value}/{total} {eta_formatted}", hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
      : undefined;
    bar?.start(mutations.length, 0);
    try {
      const seq = await sendBatches(client, family, batches, (done) => bar?.update(done));
      bar?.stop();
      console.error(`Applied ${mutations.length} mutations in ${batches.length} batch(es)`);
      console.log(String(seq));
    } finally {
      bar?.stop();
    }
  },
};
