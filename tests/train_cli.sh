#!/bin/sh
# train_cli.sh SMALLCODER MAKE_SHARDS — `smallcoder train` and `eval` end to end on the tiny preset: the loss falls,
# checkpoints hold an HF model dir + trainer state, eval matches the trainer's evaluation, 20 straight steps and
# 10 + resume + 10 give bit-identical losses, a SIGKILL in the middle of a save leaves the previous checkpoint
# intact and resumable, Ctrl-C saves and exits cleanly, and bad input (missing/corrupted shards or checkpoint,
# another config, a budget that cannot fit, a full disk during a save) gives one clear error with nothing lost.
set -u
sc=$1
mk=$2
dir=$(mktemp -d /tmp/sc_train_cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0

. "$(dirname "$0")/cli_expect.sh"
losses() { grep '"type":"train"' "$1" | sed 's/.*"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/'; }
mean() { awk '{ s += $2; n++ } END { printf "%.6f\n", s / n }'; }
complete() { # a checkpoint directory with every file (the synthetic shards have no tokenizer.json)
  for f in config.json model.safetensors optimizer.safetensors trainer_state.json; do
    [ -f "$1/$f" ] || { echo "missing $1/$f"; return 1; }
  done
}

data=$dir/data
"$mk" "$data" 128 100000 8000 || { echo "FAIL: cannot make shards"; exit 1; }
common="--data $data --preset tiny --seq 64 --grad-accum 2 --lr 3e-3 --eval-tokens 512 --threads 2"

# ---- 30 steps: loss falls, checkpoints, metrics, plot, eval ----
if $sc train $common --steps 30 --save-every 10 --eval-every 10 --out "$dir/r30" 2>"$dir/log30"; then
  first=$(losses "$dir/r30/metrics.jsonl" | head -3 | mean)
  last=$(losses "$dir/r30/metrics.jsonl" | tail -3 | mean)
  awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }' || fail "loss did not fall: $first -> $last"
  [ "$(losses "$dir/r30/metrics.jsonl" | wc -l)" -eq 30 ] || fail "metrics.jsonl does not hold 30 steps"
  [ "$(grep -c '"type":"eval"' "$dir/r30/metrics.jsonl")" -eq 3 ] || fail "expected 3 evaluations"
  complete "$dir/r30/ckpt-30" || fail "ckpt-30 incomplete"
  ls -d "$dir"/r30/ckpt-* | wc -l | grep -q '^3$' || fail "expected ckpt-10, -20, -30 (keep 3)"
  grep -q '</svg>' "$dir/r30/loss.svg" || fail "no loss.svg"
  grep -q 'loss .* tok/s .* lr .* scale .* eta' "$dir/log30" || fail "no progress line"
  $sc info "$dir/r30/ckpt-30" >/dev/null || fail "a checkpoint is not a loadable model directory"
  # eval on the same windows as the trainer's last evaluation gives the same loss
  if $sc eval --model "$dir/r30/ckpt-30" --data "$data" --seq 64 --max-tokens 512 --json >"$dir/eval.json" 2>/dev/null; then
    want=$(grep '"type":"eval"' "$dir/r30/metrics.jsonl" | tail -1 | sed 's/.*"val_loss":\([^,]*\),.*/\1/')
    got=$(sed 's/.*"loss":\([^,]*\),.*/\1/' "$dir/eval.json")
    awk -v a="$want" -v b="$got" 'BEGIN { d = a - b; exit !(d < 1e-6 && d > -1e-6) }' || fail "eval $got != trainer's $want"
  else
    fail "eval failed"
  fi
  $sc eval --model "$dir/r30/ckpt-30" --data "$data" --split train --seq 64 --max-tokens 256 >"$dir/out" 2>/dev/null &&
    grep -q '^train loss [0-9.]*, perplexity' "$dir/out" || fail "eval --split train"
else
  fail "train 30 steps:"; cat "$dir/log30"
fi

# ---- resume: 20 straight == 10 + resume + 10, bit for bit ----
run="$common --steps 20 --save-every 5 --eval-every 5 -q"
$sc train $run --out "$dir/a" 2>"$dir/err" || { fail "straight run"; cat "$dir/err"; }
$sc train $run --out "$dir/b" --stop-at 10 2>"$dir/err" || { fail "run to 10"; cat "$dir/err"; }
[ -d "$dir/b/ckpt-10" ] && [ ! -d "$dir/b/ckpt-15" ] || fail "--stop-at 10 did not stop with ckpt-10"
$sc train --resume "$dir/b" -q 2>"$dir/err" || { fail "resume"; cat "$dir/err"; }
losses "$dir/a/metrics.jsonl" >"$dir/la"
losses "$dir/b/metrics.jsonl" >"$dir/lb"
[ "$(wc -l <"$dir/la")" -eq 20 ] && cmp -s "$dir/la" "$dir/lb" || { fail "resumed losses differ"; diff "$dir/la" "$dir/lb"; }
cmp -s "$dir/a/ckpt-20/model.safetensors" "$dir/b/ckpt-20/model.safetensors" || fail "resumed weights differ"
cmp -s "$dir/a/ckpt-20/optimizer.safetensors" "$dir/b/ckpt-20/optimizer.safetensors" || fail "resumed moments differ"

# ---- SIGKILL in the middle of a save: the previous checkpoint survives and resumes exactly ----
SMALLCODER_TEST_SLOW_SAVE=300 $sc train $run --eval-every 0 --out "$dir/k" 2>/dev/null &
pid=$!
n=0
while [ $n -lt 2400 ] && ! ls -d "$dir"/k/.tmp-ckpt-10-* >/dev/null 2>&1; do sleep 0.05; n=$((n + 1)); done
sleep 0.4 # inside the save: some files written, others not
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
ls -d "$dir"/k/.tmp-ckpt-10-* >/dev/null 2>&1 || fail "the kill did not land inside the save of ckpt-10"
[ ! -e "$dir/k/ckpt-10" ] || fail "a half-written ckpt-10 appeared"
complete "$dir/k/ckpt-5" || fail "ckpt-5 damaged by the kill"
if $sc train --resume "$dir/k" -q 2>"$dir/err"; then
  ls -d "$dir"/k/.tmp-* >/dev/null 2>&1 && fail "temporary checkpoint left behind after resume"
  losses "$dir/k/metrics.jsonl" >"$dir/lk"
  cmp -s "$dir/la" "$dir/lk" || { fail "losses after kill + resume differ"; diff "$dir/la" "$dir/lk"; }
else
  fail "resume after SIGKILL"; cat "$dir/err"
fi

# ---- Ctrl-C: saves a checkpoint, exits 0, resumes exactly ----
long="$common --steps 100000 --save-every 0 --eval-every 0 -q"
$sc train $long --out "$dir/c" 2>"$dir/errc" &
pid=$!
n=0
steps_done() { c=$(grep -c train "$dir/c/metrics.jsonl" 2>/dev/null); echo "${c:-0}"; }
while [ $n -lt 2400 ] && [ "$(steps_done)" -lt 3 ]; do sleep 0.05; n=$((n + 1)); done
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 0 ] || fail "Ctrl-C: exit $rc"
grep -q 'continue with: smallcoder train --resume' "$dir/errc" || { fail "Ctrl-C message"; cat "$dir/errc"; }
stopped=$(ls -d "$dir"/c/ckpt-* 2>/dev/null | sed 's/.*ckpt-//' | sort -n | tail -1)
if [ -n "$stopped" ]; then
  complete "$dir/c/ckpt-$stopped" || fail "Ctrl-C checkpoint incomplete"
  to=$((stopped + 3))
  $sc train --resume "$dir/c" --stop-at $to -q 2>/dev/null || fail "resume after Ctrl-C"
  $sc train $long --out "$dir/c2" --stop-at $to 2>/dev/null || fail "reference run"
  losses "$dir/c/metrics.jsonl" >"$dir/lc"
  losses "$dir/c2/metrics.jsonl" >"$dir/lc2"
  cmp -s "$dir/lc" "$dir/lc2" || { fail "losses after Ctrl-C + resume differ"; diff "$dir/lc" "$dir/lc2"; }
else
  fail "Ctrl-C left no checkpoint"
fi

# ---- bad input ----
expect_any 1 "cannot open shard directory" $sc train --data "$dir/nowhere" --preset tiny --out "$dir/x1"
[ -e "$dir/x1" ] && fail "a failed start left $dir/x1 behind"
mkdir "$dir/empty"
expect_any 1 "no train-\*.tok shards" $sc train --data "$dir/empty" --preset tiny --out "$dir/x1"
mkdir "$dir/bad"
head -c 3000 "$data/train-000.tok" >"$dir/bad/train-000.tok"
expect_any 1 "train-000.tok" $sc train --data "$dir/bad" --preset tiny --out "$dir/x1"
expect_any 1 "already holds checkpoints" $sc train $common --steps 2 --out "$dir/a"
expect_any 1 "give exactly one of --preset" $sc train --data "$data" --out "$dir/x1"
expect_any 1 "not the one of --preset mini" $sc train --resume "$dir/a" --preset mini
expect_any 1 "no checkpoint found" $sc train --resume "$dir/empty"
mkdir -p "$dir/broken"
cp -r "$dir/a/ckpt-20" "$dir/broken/"
head -c 5000 "$dir/a/ckpt-20/model.safetensors" >"$dir/broken/ckpt-20/model.safetensors"
expect_any 1 "model.safetensors" $sc train --resume "$dir/broken" -q
rm -rf "$dir/broken/ckpt-20"
cp -r "$dir/a/ckpt-20" "$dir/broken/"
echo '{"format": "something else"}' >"$dir/broken/ckpt-20/trainer_state.json"
expect_any 1 "not a SmallCoder trainer state" $sc train --resume "$dir/broken/ckpt-20" -q
expect_any 1 "no CUDA backend\|no CUDA device" $sc train $common --out "$dir/x1" --device cuda
expect_any 1 "needs --device cuda" $sc train $common --out "$dir/x1" --precision fp16
expect_any 1 "longer than the model's context" $sc train $common --out "$dir/x1" --seq 100000
expect_any 2 "expects a size" $sc train $common --out "$dir/x1" --plan --vram-budget lots
expect_any 1 "over --vram-budget" $sc train --preset 304m --plan --vram-budget 1GiB
grep -q "OVER the device budget" "$dir/out" || fail "--plan over budget does not show the table"
expect_any 1 "smaller model" $sc train --preset 304m --plan --vram-budget 500MiB
$sc train --preset 304m --seq 4096 --plan --vram-budget 1.75GiB >"$dir/out" 2>&1 || fail "304m plan at 1.75GiB"
grep -q "chosen placement: offload" "$dir/out" && grep -q "fits the device budget of 1.75 GiB" "$dir/out" ||
  { fail "304m does not fit 1.75 GiB in offload"; cat "$dir/out"; }
expect_any 1 "nowhere/config.json: cannot open" $sc eval --model "$dir/nowhere" --data "$data"
echo '{"not": "a tokenizer"}' >"$dir/fake_tokenizer.json"
expect_any 1 "fake_tokenizer.json" $sc train $common --out "$dir/x1" --tokenizer "$dir/fake_tokenizer.json"
expect_any 1 "needs the shards' tokenizer" $sc train $common --out "$dir/x1" --fim-rate 0.5
expect_any 1 "no val2-\*.tok shards" $sc eval --model "$dir/a/ckpt-20" --data "$data" --split val2

# a full disk during a save (file size limit: writes fail with EFBIG): clear error, previous checkpoint intact
$sc train $run --out "$dir/f" --stop-at 5 2>/dev/null || fail "run to 5"
(ulimit -f 1024; trap '' XFSZ; exec $sc train --resume "$dir/f" -q) >"$dir/out" 2>"$dir/err"
rc=$?
[ $rc -eq 1 ] && grep -q "saving checkpoint" "$dir/err" || { fail "full disk: exit $rc"; cat "$dir/err"; }
complete "$dir/f/ckpt-5" || fail "ckpt-5 damaged by the failed save"
ls -d "$dir"/f/.tmp-* >/dev/null 2>&1 && fail "failed save left a temporary directory"
$sc train --resume "$dir/f" -q 2>/dev/null || fail "resume after the failed save"
losses "$dir/f/metrics.jsonl" >"$dir/lf"
cmp -s "$dir/la" "$dir/lf" || { fail "losses after the failed save differ"; diff "$dir/la" "$dir/lf"; }

if [ $fails -ne 0 ]; then echo "train_cli: $fails failure(s)"; exit 1; fi
echo "train_cli: all checks passed"
