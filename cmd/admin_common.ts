/**
 * What every admin command shares: where the executives are, the admin token, and the client
 * built from them.
 */
import { ExecutiveClient } from "../src/client/executive_client.ts";
import type { FlagSpec } from "./cli.ts";
import { UsageError } from "./cli.ts";

/** `--executive URL[,URL…]`: the executives to talk to, tried in turn. */
export const EXECUTIVE_FLAG: FlagSpec = {
  name: "executive",
  type: "list",
  help: "executive base URLs, comma-separated; tried in turn on connection errors and 503",
  default: ["http://127.0.0.1:7001"],
  placeholder: "URL[,URL…]",
};

/** `--admin-token`: the bearer token admin routes require. */
export const ADMIN_TOKEN_FLAG: FlagSpec = {
  name: "admin-token",
  type: "string",
  help: "admin bearer token of the executives",
  placeholder: "TOKEN",
};

/** Flags of commands that use admin routes. */
export const ADMIN_FLAGS: FlagSpec[] = [EXECUTIVE_FLAG, ADMIN_TOKEN_FLAG];

/** Builds a client from the common flags; admin commands must have a token. */
export function adminClient(opts: Record<string, unknown>): ExecutiveClient {
  const token = opts.adminToken;
  if (typeof token !== "string" || token.length === 0) {
    throw new UsageError("this command needs --admin-token (or CTL_ADMIN_TOKEN)");
  }
  return new ExecutiveClient({ urls: executiveUrls(opts), adminToken: token });
}

/** The executive URLs from `--executive`. */
export function executiveUrls(opts: Record<string, unknown>): string[] {
  const urls = opts.executive as string[] | undefined;
  if (!urls || urls.length === 0) throw new UsageError("--executive needs at least one URL");
  for (const url of urls) {
    if (!/^https?:\/\/[^/]+/.test(url)) {
      throw new UsageError(`--executive: "${url}" is not an http(s) URL`);
    }
  }
  return urls;
}

/** Prints a write's outcome: what happened and the ledger seq it is ordered at. */
export function printWrite(what: string, seq: number): void {
  console.log(`${what} (seq ${seq})`);
}
