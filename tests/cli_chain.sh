#!/bin/sh
# cli_chain.sh SMALLCODER SOURCE_DIR — the chain a user runs, with no --tokenizer anywhere: tokenizer train ->
# tokenize (keeps tokenizer.json with the shards) -> train (writes it into every checkpoint) -> quantize ->
# complete (issue 14, item 9); then what must never happen to those directories (items 3, 6, 7, 8): quantize
# into its own model directory (any spelling of it) refused, INT8 dirs read by info and clearly refused by
# forward, a full disk during quantize/teacher/export named with the errno text and no output left, stale
# *.kd.tmp.<pid> of a killed teacher removed, a tokenizer larger than the model's vocabulary refused at load.
set -u
sc=$1
src=$2
dir=$(mktemp -d /tmp/sc_cli_chain.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/cli_expect.sh"

# ---- item 9: the chain without --tokenizer ----
$sc tokenizer train -q --vocab-size 400 --ext .c,.h --out "$dir/tokenizer.json" "$src/data" 2>"$dir/err" ||
  { echo "FAIL: tokenizer train"; cat "$dir/err"; exit 1; }
$sc tokenize -t "$dir/tokenizer.json" --out "$dir/shards" --ext .c,.h --val-fraction 0.1 "$src/data" >/dev/null 2>"$dir/err" ||
  { echo "FAIL: tokenize"; cat "$dir/err"; exit 1; }
cmp -s "$dir/tokenizer.json" "$dir/shards/tokenizer.json" || fail "tokenize did not keep tokenizer.json with the shards"
$sc train --data "$dir/shards" --preset tiny --seq 64 --grad-accum 1 --steps 4 --save-every 2 --eval-every 0 \
  --threads 2 -q --out "$dir/run" 2>"$dir/err" || { fail "train"; cat "$dir/err"; }
for s in 2 4; do cmp -s "$dir/tokenizer.json" "$dir/run/ckpt-$s/tokenizer.json" || fail "ckpt-$s lacks the tokenizer"; done
m=$dir/run/ckpt-4
$sc quantize --model "$m" --out "$dir/q" 2>"$dir/err" || { fail "quantize"; cat "$dir/err"; }
$sc complete --model "$dir/q" --prompt "int " -n 4 >"$dir/out" 2>"$dir/err" || { fail "complete on the INT8 dir"; cat "$dir/err"; }
$sc train --help | grep -q "default: DATA/tokenizer.json" || fail "train --help does not name the default tokenizer"

# ---- item 3: quantize into the model's own directory, however spelled, is refused and changes nothing ----
cp "$m/model.safetensors" "$dir/orig.safetensors"
ln -s "$m" "$dir/link"
for o in "$m" "$m/" "$m/." "$dir/link" "$dir/run/../run/ckpt-4"; do
  expect 2 "is the model directory" $sc quantize --model "$m" --out "$o"
done
expect 2 "is the model directory" $sc quantize --model "$dir/link" --out "$m"
cmp -s "$m/model.safetensors" "$dir/orig.safetensors" || fail "quantize --out = --model changed the FP32 weights"

# ---- item 7: our own INT8 dirs: info reads them, forward says what they are ----
$sc info "$dir/q" >"$dir/out" 2>"$dir/err" || { fail "info on an INT8 dir"; cat "$dir/err"; }
grep -q "dtype I8 (INT8 matrices, F16 scales), matches the config" "$dir/out" || fail "info INT8 line: $(cat "$dir/out")"
echo "1 2 3" >"$dir/ids"
expect 1 "q: an INT8 model directory (smallcoder quantize)" $sc forward --model "$dir/q" --ids "$dir/ids"

# ---- item 6: a tokenizer with more ids than the model's vocabulary is refused at load ----
$sc init --preset tiny --vocab-size 300 --out "$dir/small" >/dev/null 2>&1 || fail "init --vocab-size 300"
cp "$dir/tokenizer.json" "$dir/small/"
expect 1 "small/tokenizer.json: the tokenizer has 400 ids, the model's vocab_size is 300" $sc complete --model "$dir/small" --prompt "int " -n 2
expect 1 "small/tokenizer.json: the tokenizer has 400 ids" timeout 20 $sc serve --model "$dir/small" --port 0

# ---- items 7, 8: full disk (file size limit: EFBIG) names the file and the errno text, leaves nothing ----
limited() { (ulimit -f 40; trap '' XFSZ; exec "$@") >"$dir/out" 2>"$dir/err"; }
limited $sc quantize --model "$m" --out "$dir/q-full"
[ $? -eq 1 ] && grep -q "q-full/model.safetensors.*File too large" "$dir/err" || { fail "quantize on a full disk"; cat "$dir/err"; }
[ -e "$dir/q-full" ] && fail "a failed quantize left $dir/q-full"
limited $sc export gguf --model "$m" --out "$dir/m.gguf"
[ $? -eq 1 ] && grep -q "m.gguf: write failed (File too large)" "$dir/err" || { fail "export on a full disk"; cat "$dir/err"; }
ls "$dir"/m.gguf* >/dev/null 2>&1 && fail "a failed export left $(ls "$dir"/m.gguf*)"
limited $sc teacher --model "$m" --data "$dir/shards" --out "$dir/kd-full" -k 4 -q
[ $? -eq 1 ] && grep -q "File too large" "$dir/err" || { fail "teacher on a full disk"; cat "$dir/err"; }
[ -e "$dir/kd-full" ] && fail "a failed teacher left $dir/kd-full ($(ls "$dir/kd-full"))"
# a killed teacher's *.kd.tmp.<pid> is removed by the next run once its pid is dead; a live writer's is kept
mkdir "$dir/kd"
dead=$(sh -c 'echo $$')
echo junk >"$dir/kd/train-00000.kd.tmp.$dead"
echo junk >"$dir/kd/train-00000.kd.tmp.$$"
$sc teacher --model "$m" --data "$dir/shards" --out "$dir/kd" -k 4 -q >/dev/null 2>"$dir/err" || { fail "teacher"; cat "$dir/err"; }
[ -e "$dir/kd/train-00000.kd.tmp.$dead" ] && fail "stale .kd.tmp of a dead pid left behind"
[ -e "$dir/kd/train-00000.kd.tmp.$$" ] || fail "the .kd.tmp of a live pid was removed"

if [ $fails -ne 0 ]; then echo "cli_chain: $fails failure(s)"; exit 1; fi
echo "cli_chain: all checks passed"
