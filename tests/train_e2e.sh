#!/bin/sh
# train_e2e.sh SMALLCODER SOURCE_DIR — the whole pipeline on real text: `tokenizer train` and `tokenize` on this
# repository's own C sources, then `train` (tiny preset, fill-in-the-middle on through the tokenizer) for 30 steps
# with the loss going down, a checkpoint that is a complete HF model directory (tokenizer.json included),
# --resume continuing it to 40 steps with the same losses as a straight 40-step run, and `eval` on the val split.
set -u
sc=$1
src=$2
dir=$(mktemp -d /tmp/sc_train_e2e.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
losses() { grep '"type":"train"' "$1" | sed 's/.*"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/'; }
mean() { awk '{ s += $2; n++ } END { printf "%.6f\n", s / n }'; }

corpus="$src/host $src/data $src/train"
$sc tokenizer train -q --vocab-size 1024 --ext .c,.h --out "$dir/tokenizer.json" $corpus 2>"$dir/err" ||
  { echo "FAIL: tokenizer train"; cat "$dir/err"; exit 1; }
$sc tokenize -t "$dir/tokenizer.json" --out "$dir/shards" --ext .c,.h --val-fraction 0.1 --frame-tokens 4096 \
  $corpus >/dev/null 2>"$dir/err" || { echo "FAIL: tokenize"; cat "$dir/err"; exit 1; }
cp "$dir/tokenizer.json" "$dir/shards/"

common="--data $dir/shards --preset tiny --seq 128 --grad-accum 4 --lr 5e-3 --warmup 3 --steps 40 --eval-every 10
        --eval-tokens 2048 --save-every 10 --threads 2 -q"
if $sc train $common --out "$dir/run" --stop-at 30 2>"$dir/log"; then
  grep -q "FIM 0.5" "$dir/log" || { fail "FIM is not on by default with a FIM tokenizer"; cat "$dir/log"; }
  first=$(losses "$dir/run/metrics.jsonl" | head -3 | mean)
  last=$(losses "$dir/run/metrics.jsonl" | tail -3 | mean)
  awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.8) }' || fail "loss did not fall: $first -> $last"
  for f in config.json model.safetensors optimizer.safetensors trainer_state.json tokenizer.json; do
    [ -f "$dir/run/ckpt-30/$f" ] || fail "ckpt-30 lacks $f"
  done
  cmp -s "$dir/tokenizer.json" "$dir/run/ckpt-30/tokenizer.json" || fail "checkpoint tokenizer.json differs"
  grep -q "\"vocab_size\":[[:space:]]*1024" "$dir/run/ckpt-30/config.json" || fail "the preset did not take the tokenizer's vocabulary"
else
  fail "train:"; cat "$dir/log"
fi
$sc train --resume "$dir/run" -q 2>"$dir/log" || { fail "resume:"; cat "$dir/log"; }
$sc train $common --out "$dir/straight" 2>"$dir/log" || { fail "straight run:"; cat "$dir/log"; }
losses "$dir/run/metrics.jsonl" >"$dir/l1"
losses "$dir/straight/metrics.jsonl" >"$dir/l2"
[ "$(wc -l <"$dir/l1")" -eq 40 ] && cmp -s "$dir/l1" "$dir/l2" || { fail "resumed losses differ"; diff "$dir/l1" "$dir/l2"; }
if $sc eval --model "$dir/run/ckpt-40" --data "$dir/shards" --seq 128 >"$dir/out" 2>"$dir/err"; then
  grep -q '^val loss [0-9.]*, perplexity [0-9.]* over [0-9]* tokens' "$dir/out" || { fail "eval output"; cat "$dir/out"; }
  vl=$(sed 's/^val loss \([0-9.]*\),.*/\1/' "$dir/out")
  awk -v v="$vl" 'BEGIN { exit !(v < log(1024) - 0.8) }' || fail "val loss $vl is no better than chance"
else
  fail "eval:"; cat "$dir/err"
fi

if [ $fails -ne 0 ]; then echo "train_e2e: $fails failure(s)"; exit 1; fi
echo "train_e2e: all checks passed"
