#!/bin/sh
# open_models_published.sh SMALLCODER SOURCE_DIR NPM_DIR — the commands on family-shaped models that carry a
# tokenizer.json as published (issue 17): TinyLlama-1.1B with the 32000-token SentencePiece-style Llama-2 file
# (Prepend/Replace normalizer, byte_fallback) and Qwen2.5-Coder-0.5B with Qwen's 151k byte-level file (NFC; its
# FIM tokens). Full vocabularies and widths (tests/reference/open_models.py, 1 layer, BF16, 2 shards), so every id
# the tokenizer gives is a row of the model. Per family: tokenize -> eval -> quantize -> eval INT8 -> complete
# (FP32, INT8; Qwen: FIM --prefix/--suffix, prompt = 3 sentinels + prefix + suffix ids) -> serve (/completion equals
# complete; Qwen: /infill equals complete's FIM) -> export gguf q8_0 (tokenizer model "llama" with scores and byte
# tokens, or "gpt2"; one token per vocabulary row). The tokenizer.json files are the ones tokenizer_hf_published
# compares with HF tokenizers, fetched once by the ctest fixture tokenizer_published_files into NPM_DIR/published:
# nothing is downloaded here; without them the test is skipped (exit 77).
set -u
sc=$1
src=$2
pub=$3/published
for f in llama2 qwen3; do
  [ -s "$pub/$f/tokenizer.json" ] || { echo "SKIP: $pub/$f/tokenizer.json absent (fixture tokenizer_published_files)"; exit 77; }
done
. "$src/tests/open_models_lib.sh"
dir=$(mktemp -d /tmp/sc_open_pub.XXXXXX)
. "$src/tests/serve_start.sh"
trap serve_cleanup EXIT

# a small corpus: 10 documents (two C files cut in 5), so a 30% validation split is never empty
mkdir -p "$dir/corpus"
cp "$src/data/utf8.c" "$src/host/checksum.c" "$dir/corpus/"
for f in "$dir"/corpus/*.c; do split -n l/5 -d --additional-suffix=.c "$f" "${f%.c}_part" && rm "$f"; done

# gguf_tokenizer FILE: "MODEL NTOKENS" from a GGUF's metadata (tokenizer.ggml.model, tokenizer.ggml.tokens)
gguf_tokenizer() {
  /usr/bin/python3 - "$1" <<'PY'
import struct, sys
f = open(sys.argv[1], "rb")
magic, ver, nt, nkv = struct.unpack("<4sIQQ", f.read(24))
size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def s():
    return f.read(struct.unpack("<Q", f.read(8))[0])
def skip(t):
    if t == 8:
        s()
    elif t == 9:
        et, n = struct.unpack("<IQ", f.read(12))
        for _ in range(n):
            skip(et)
        return n
    else:
        f.read(size[t])
model = ntok = None
for _ in range(nkv):
    k = s().decode()
    t = struct.unpack("<I", f.read(4))[0]
    if k == "tokenizer.ggml.model":
        model = s().decode()
    elif k == "tokenizer.ggml.tokens":
        ntok = skip(t)
    else:
        skip(t)
print(model, ntok)
PY
}

for spec in "tinyllama-1.1b llama2 llama 32000" "qwen2.5-coder-0.5b qwen3 gpt2 151936"; do
  set -- $spec
  fam=$1 tokfile=$pub/$2/tokenizer.json want_model=$3 vocab=$4
  m=$dir/$fam
  echo "== $fam with the published $2 tokenizer.json"
  /usr/bin/python3 "$src/tests/reference/open_models.py" --family "$fam" --out "$m" --layers 1 --dtype BF16 \
    --shards 2 --seed 5 || { fail "$fam: generator"; continue; }
  cp "$tokfile" "$m/tokenizer.json"
  run "$fam tokenize" $sc tokenize -t "$m/tokenizer.json" --out "$m.shards" --ext .c --val-fraction 0.3 \
    --frame-tokens 4096 "$dir/corpus" && cp "$m/tokenizer.json" "$m.shards/"
  run "$fam eval" $sc eval --model "$m" --data "$m.shards" --seq 64 --max-tokens 128 --device cpu --threads 2 &&
    sed -n 1p "$dir/out"
  run "$fam quantize" $sc quantize --model "$m" --out "$m-int8" --threads 2
  run "$fam eval int8" $sc eval --model "$m-int8" --data "$m.shards" --seq 64 --max-tokens 128 --device cpu \
    --threads 2 && sed -n 1p "$dir/out"
  # the prompt is tokenized by the published file: as many prompt tokens as `tokenizer encode` gives
  printf 'int main(void) {\n    return 0;' >"$dir/prompt"
  n_ids=$($sc tokenizer encode -t "$m/tokenizer.json" "$dir/prompt" | wc -w)
  for d in "$m" "$m-int8"; do
    if run "$fam complete $(basename "$d")" $sc complete --model "$d" --file "$dir/prompt" -n 6 --device cpu --threads 2; then
      grep -q "prompt $n_ids tokens" "$dir/err" || fail "$fam complete: $(grep -o 'prompt [0-9]* tokens' "$dir/err"), tokenizer encode gives $n_ids"
    fi
  done
  a=$($sc complete --model "$m-int8" --prompt "static int " -n 6 --device cpu --threads 2 2>/dev/null)
  if [ "$fam" = qwen2.5-coder-0.5b ]; then
    # FIM with the family's sentinels: <|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>
    printf 'def f(x):\n    y = ' >"$dir/pre"; printf '\n    return y' >"$dir/suf"
    np=$($sc tokenizer encode -t "$m/tokenizer.json" "$dir/pre" | wc -w)
    ns=$($sc tokenizer encode -t "$m/tokenizer.json" "$dir/suf" | wc -w)
    if run "$fam complete FIM" $sc complete --model "$m-int8" --prefix "$(cat "$dir/pre")" --suffix "$(cat "$dir/suf")" \
         -n 6 --device cpu --threads 2; then
      grep -q "prompt $((np + ns + 3)) tokens" "$dir/err" ||
        fail "$fam FIM: $(grep -o 'prompt [0-9]* tokens' "$dir/err"), want 3 sentinels + $np + $ns"
      fim=$(cat "$dir/out")
      echo "$fam FIM: prompt $((np + ns + 3)) tokens (3 sentinels + $np + $ns)"
    fi
  fi
  if command -v curl >/dev/null; then
    start --model "$m-int8" --device cpu --threads 2
    curl -s "$url/completion" -d '{"prompt":"static int ","n_predict":6,"temperature":0}' >"$dir/body"
    printf '%s' "$a" >"$dir/completed"
    /usr/bin/python3 - "$dir/body" "$dir/completed" <<'PY' || fail "$fam serve: /completion differs from complete"
import json, sys
got = json.load(open(sys.argv[1]))["content"]
raw = open(sys.argv[2], "rb").read()
try:
    want = raw.decode("utf-8")
except UnicodeDecodeError:  # a random model's bytes: JSON carries them replaced, so only the presence is compared
    want = None
assert isinstance(got, str) and (want is None or got.rstrip("\n") == want.rstrip("\n")), (got, want)
PY
    if [ "$fam" = qwen2.5-coder-0.5b ] && [ -n "${fim+x}" ]; then
      curl -s "$url/infill" -d '{"input_prefix":"def f(x):\n    y = ","input_suffix":"\n    return y","n_predict":6,"temperature":0}' >"$dir/body"
      printf '%s' "$fim" >"$dir/completed"
      /usr/bin/python3 - "$dir/body" "$dir/completed" <<'PY' || fail "$fam serve: /infill differs from complete FIM"
import json, sys
got = json.load(open(sys.argv[1]))["content"]
raw = open(sys.argv[2], "rb").read()
try:
    want = raw.decode("utf-8")
except UnicodeDecodeError:
    want = None
assert isinstance(got, str) and (want is None or got.rstrip("\n") == want.rstrip("\n")), (got, want)
PY
      echo "$fam /infill: the text of complete's FIM"
    fi
    stop
  fi
  if run "$fam export gguf" $sc export gguf --model "$m" --out "$m.gguf" --type q8_0; then
    got=$(gguf_tokenizer "$m.gguf")
    [ "$got" = "$want_model $vocab" ] || fail "$fam gguf tokenizer: '$got', want '$want_model $vocab'"
    echo "$fam gguf: tokenizer $got"
  fi
  rm -rf "$m" "$m-int8" "$m.gguf" # 1 GB per family
done
[ $fails -eq 0 ] && echo "open models with published tokenizers: all passed" || echo "open models with published tokenizers: $fails FAILURES"
[ $fails -eq 0 ]
