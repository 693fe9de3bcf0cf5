#!/bin/sh
# open_models_published.sh SMALLCODER SOURCE_DIR NPM_DIR [FIM_CHECK] — the commands on family-shaped models that
# carry a tokenizer.json as published (issue 17): TinyLlama-1.1B with the 32000-token SentencePiece-style Llama-2
# file (Prepend/Replace normalizer, byte_fallback, post_processor "<s> $A"), Qwen2.5-Coder-0.5B with Qwen's 151k
# byte-level file (NFC; its FIM tokens; adds no BOS) and Llama-3.2-1B with Meta's 128k Llama-3 file carrying
# Llama-3.2's post_processor (Sequence[ByteLevel, "<|begin_of_text|> $A"]; the npm file has the first, bare
# ByteLevel one). Full vocabularies and widths (tests/reference/open_models.py, 1 layer, BF16, 2 shards), so every
# id the tokenizer gives is a row of the model. Per family: tokenize (documents end with the family's EOS and start
# with its BOS) -> eval -> quantize -> eval INT8 -> complete (FP32, INT8; the prompt = the BOS where the tokenizer
# adds one + the text's ids, checked id by id with --print-tokens; Qwen: FIM --prefix/--suffix, prompt = 3
# sentinels + prefix + suffix ids) -> serve (/completion equals complete; Qwen: /infill equals complete's FIM) ->
# export gguf q8_0 (tokenizer model "llama" with scores and byte tokens, or "gpt2"; one token per vocabulary row;
# add_bos_token as the post_processor); infer-bench --file's prompt has the BOS too. Then training data for a
# SentencePiece-style family with FIM tokens (the Llama-2 file + CodeLlama's ▁<PRE>/▁<SUF>/▁<MID>/▁<EOT>):
# separator </s> = 2 and BOS <s> = 1 in the shards, FIM_CHECK (tests/fim_tokenizer_check) on them, and train
# --fim-rate 1 on a student of that vocabulary. The tokenizer.json files are the ones tokenizer_hf_published
# compares with HF tokenizers, fetched once by the ctest fixture tokenizer_published_files into NPM_DIR/published:
# nothing is downloaded here; without them the test is skipped (exit 77).
set -u
sc=$1
src=$2
pub=$3/published
fim_check=${4:-}
for f in llama2 qwen3 llama3; do
  [ -s "$pub/$f/tokenizer.json" ] || { echo "SKIP: $pub/$f/tokenizer.json absent (fixture tokenizer_published_files)"; exit 77; }
done
. "$src/tests/open_models_lib.sh"
dir=$(mktemp -d /tmp/sc_open_pub.XXXXXX)
. "$src/tests/serve_start.sh"
trap serve_cleanup EXIT
trap 'exit 143' INT TERM HUP # a killed run (ctest's timeout, Ctrl-C) still removes its GBs of models

# a small corpus: 10 documents (two C files cut in 5), so a 30% validation split is never empty
mkdir -p "$dir/corpus"
cp "$src/data/utf8.c" "$src/host/checksum.c" "$dir/corpus/"
for f in "$dir"/corpus/*.c; do split -n l/5 -d --additional-suffix=.c "$f" "${f%.c}_part" && rm "$f"; done

# the published files in the forms the families ship: Llama-3.2's post_processor on Meta's Llama-3 file, and
# CodeLlama's four infilling tokens (ids 32007-32010 as in CodeLlama's 32016) on the Llama-2 file
mkdir -p "$dir/llama32"
/usr/bin/python3 - "$pub" "$dir" <<'PY' || { echo "FAIL: writing the tokenizer variants"; exit 1; }
import json, sys
pub, out = sys.argv[1], sys.argv[2]
o = json.load(open(pub + "/llama3/tokenizer.json", encoding="utf-8"))
bot = {"id": "<|begin_of_text|>", "type_id": 0}
o["post_processor"] = {"type": "Sequence", "processors": [
    {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
    {"type": "TemplateProcessing", "single": [{"SpecialToken": bot}, {"Sequence": {"id": "A", "type_id": 0}}],
     "pair": [{"SpecialToken": bot}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": dict(bot, type_id=1)},
              {"Sequence": {"id": "B", "type_id": 1}}],
     "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000], "tokens": ["<|begin_of_text|>"]}}}]}
json.dump(o, open(out + "/llama32/tokenizer.json", "w", encoding="utf-8"), ensure_ascii=False)
o = json.load(open(pub + "/llama2/tokenizer.json", encoding="utf-8"))
for i, t in enumerate(["\u2581<PRE>", "\u2581<SUF>", "\u2581<MID>", "\u2581<EOT>"]):
    o["model"]["vocab"][t] = 32007 + i
    o["added_tokens"].append({"id": 32007 + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                              "normalized": False, "special": True})
json.dump(o, open(out + "/codellama.json", "w", encoding="utf-8"), ensure_ascii=False)
PY

# gguf_tokenizer FILE: "MODEL NTOKENS ADD_BOS" from a GGUF's metadata (tokenizer.ggml.model, .tokens, .add_bos_token)
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
model = ntok = add_bos = None
for _ in range(nkv):
    k = s().decode()
    t = struct.unpack("<I", f.read(4))[0]
    if k == "tokenizer.ggml.model":
        model = s().decode()
    elif k == "tokenizer.ggml.tokens":
        ntok = skip(t)
    elif k == "tokenizer.ggml.add_bos_token":
        add_bos = struct.unpack("<?", f.read(1))[0]
    else:
        skip(t)
print(model, ntok, str(add_bos).lower())
PY
}

# family, tokenizer.json, GGUF tokenizer model, rows, the BOS its post_processor adds (- none), its EOS
for spec in "tinyllama-1.1b $pub/llama2 llama 32000 1 2" "qwen2.5-coder-0.5b $pub/qwen3 gpt2 151936 - 151643" \
            "llama-3.2-1b $dir/llama32 gpt2 128256 128000 128001"; do
  set -- $spec
  fam=$1 tokfile=$2/tokenizer.json want_model=$3 vocab=$4 bos=$5 eos=$6
  m=$dir/$fam
  echo "== $fam with the published $2 tokenizer.json"
  /usr/bin/python3 "$src/tests/reference/open_models.py" --family "$fam" --out "$m" --layers 1 --dtype BF16 \
    --shards 2 --seed 5 || { fail "$fam: generator"; continue; }
  cp "$tokfile" "$m/tokenizer.json"
  run "$fam tokenize" $sc tokenize -t "$m/tokenizer.json" --out "$m.shards" --ext .c --val-fraction 0.3 \
    --frame-tokens 4096 "$dir/corpus" && cp "$m/tokenizer.json" "$m.shards/" && {
    want="each document ends with [^ ]* (id $eos)"
    [ "$bos" = - ] || want="$want and starts with "
    grep -q "$want" "$dir/out" && { [ "$bos" != - ] || ! grep -q "starts with" "$dir/out"; } ||
      fail "$fam tokenize: $(grep 'each document' "$dir/out"), want EOS $eos, BOS $bos"
    grep 'each document' "$dir/out"
  }
  run "$fam eval" $sc eval --model "$m" --data "$m.shards" --seq 64 --max-tokens 128 --device cpu --threads 2 &&
    sed -n 1p "$dir/out"
  run "$fam quantize" $sc quantize --model "$m" --out "$m-int8" --threads 2
  run "$fam eval int8" $sc eval --model "$m-int8" --data "$m.shards" --seq 64 --max-tokens 128 --device cpu \
    --threads 2 && sed -n 1p "$dir/out"
  # the prompt is tokenized by the published file with its post_processor (HF's tokenizer(text)): the BOS where it
  # adds one, then the ids `tokenizer encode` gives; `encode --special` is that (tokenizer_hf_published checks it
  # against HF)
  printf 'int main(void) {\n    return 0;' >"$dir/prompt"
  text_ids=$($sc tokenizer encode -t "$m/tokenizer.json" "$dir/prompt")
  [ "$bos" = - ] && want_ids=$text_ids || want_ids="$bos $text_ids"
  [ "$($sc tokenizer encode --special -t "$m/tokenizer.json" "$dir/prompt")" = "$want_ids" ] ||
    fail "$fam tokenizer encode --special: not the BOS ($bos) + the text's ids"
  n_ids=$(echo "$want_ids" | wc -w)
  for d in "$m" "$m-int8"; do
    if run "$fam complete $(basename "$d")" $sc complete --model "$d" --file "$dir/prompt" -n 6 --device cpu --threads 2 --print-tokens; then
      grep -q "prompt $n_ids tokens" "$dir/err" || fail "$fam complete: $(grep -o 'prompt [0-9]* tokens' "$dir/err"), want $n_ids"
      [ "$(sed -n 's/^complete: prompt ids: //p' "$dir/err")" = "$want_ids" ] ||
        fail "$fam complete: prompt ids $(sed -n 's/^complete: prompt ids: //p' "$dir/err" | cut -c1-40), want $want_ids"
    fi
  done
  echo "$fam complete: prompt = $([ "$bos" = - ] && echo "no BOS" || echo "BOS $bos") + $(echo "$text_ids" | wc -w) text ids"
  # infer-bench --file: the BOS, then the file's last tokens (all of them here)
  if run "$fam infer-bench --file" $sc infer-bench --model "$m-int8" --file "$dir/prompt" -p 64 -n 2 -r 1 --threads 2 --json; then
    grep -q "\"n_prompt\":$n_ids," "$dir/out" || fail "$fam infer-bench --file: $(grep -o '"n_prompt":[0-9]*' "$dir/out"), want $n_ids"
  fi
  [ "$fam" = llama-3.2-1b ] && ctx="--ctx 512" || ctx="" # its 131072 positions: a 1 GB KV cache per slot
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
    start --model "$m-int8" --device cpu --threads 2 $ctx
    curl -s "$url/completion" -d '{"prompt":"static int ","n_predict":6,"temperature":0}' >"$dir/body"
    printf '%s' "$a" >"$dir/completed"
    # the server's prompt is complete's: the BOS where the tokenizer adds one, then the text's ids
    printf 'static int ' >"$dir/p2"
    n_want=$($sc tokenizer encode --special -t "$m/tokenizer.json" "$dir/p2" | wc -w)
    /usr/bin/python3 - "$dir/body" "$dir/completed" "$n_want" <<'PY' || fail "$fam serve: /completion differs from complete"
import json, sys
body = json.load(open(sys.argv[1]))
assert body["tokens_evaluated"] == int(sys.argv[3]), ("tokens_evaluated", body["tokens_evaluated"], sys.argv[3])
got = body["content"]
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
    [ "$bos" = - ] && add_bos=false || add_bos=true
    [ "$got" = "$want_model $vocab $add_bos" ] || fail "$fam gguf tokenizer: '$got', want '$want_model $vocab $add_bos'"
    echo "$fam gguf: tokenizer $got"
  fi
  rm -rf "$m" "$m-int8" "$m.gguf" # 1 GB per family
done

# training data for a SentencePiece-style family with FIM tokens (CodeLlama's on the Llama-2 file): documents end
# with </s> (2) and start with <s> (1), FIM uses ▁<PRE>/▁<SUF>/▁<MID> and keeps the <s> in front
echo "== training data with the CodeLlama-style tokenizer"
cl=$dir/codellama.json
if run "codellama tokenize" $sc tokenize -t "$cl" --out "$dir/cl.shards" --ext .c --val-fraction 0.3 --frame-tokens 4096 "$dir/corpus"; then
  grep -q "each document ends with </s> (id 2) and starts with <s>" "$dir/out" || fail "codellama tokenize: $(grep 'each document' "$dir/out")"
  if [ -n "$fim_check" ]; then
    if "$fim_check" "$cl" "$dir/cl.shards" >"$dir/out" 2>&1; then
      grep -q "prefix 32007, suffix 32008, middle 32009, pad -1, end of text 2, bos 1" "$dir/out" ||
        fail "codellama FIM: $(head -1 "$dir/out")"
      tail -2 "$dir/out" | head -1
    else
      fail "codellama FIM check: $(tail -3 "$dir/out")"
    fi
  fi
  run "codellama init" $sc init --preset tiny --layers 1 --tokenizer "$cl" --out "$dir/cl.student" &&
    run "codellama train --fim-rate 1" $sc train --model "$dir/cl.student" --data "$dir/cl.shards" --out "$dir/cl.run" \
      --seq 64 --grad-accum 1 --eval-every 0 --steps 2 --save-every 2 --threads 2 --device cpu --fim-rate 1 -q &&
    { grep -q "FIM in the codellama layout (▁<PRE> ▁<SUF> ▁<MID>, pad none), documents end with </s> and keep their BOS <s>" "$dir/err" ||
        fail "codellama train: $(grep 'FIM' "$dir/err")"; grep "FIM in" "$dir/err"; }
fi
[ $fails -eq 0 ] && echo "open models with published tokenizers: all passed" || echo "open models with published tokenizers: $fails FAILURES"
[ $fails -eq 0 ]
