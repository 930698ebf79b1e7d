/** `ctl`: the single program whose subcommands are the components. See `ctl --help`. */
import { main } from "./cmd/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
