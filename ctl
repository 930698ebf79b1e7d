#!/bin/sh
# Runs the ctl program from this checkout with the Deno that `make setup` installed
# (or the one on PATH). Example: ./ctl --help
here=$(cd "$(dirname "$0")" && pwd)
deno="$here/.tools/deno/node_modules/.bin/deno"
[ -x "$deno" ] || deno=$(command -v deno) || { echo "ctl: run 'make setup' first" >&2; exit 1; }
exec "$deno" run --allow-all --quiet "$here/main.ts" "$@"
