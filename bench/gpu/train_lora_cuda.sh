#!/bin/sh
# bench/gpu/train_lora_cuda.sh SMALLCODER MAKE_SHARDS WORKDIR [PRESET] [SEQ] [STEPS] [BASE_DIR] — LoRA fine-tuning on
# the GPU (a stage of bench/gpu-suite; docs/lora.md): a random PRESET base (`smallcoder init`, or BASE_DIR, a model
# of that preset already written, e.g. by the suite's inference stage), then `train --lora 16 --device
# cuda --placement offload` (the small-card placement) on synthetic shards, with an FP16 and an INT8 base. For each
# it prints the plan's device rows (`--plan --device cuda`: the context measured on this card), the start-up line
# (the arena), tok/s of every step (the first includes warm-up and GEMM tuning) and the peak device memory
# nvidia-smi saw during the run (the whole GPU: context and cuBLAS included; sampled every 100 ms, so a short peak
# can be missed), to set against the plan's "device total + context".
# With the CPU emulator's smallcoder (tests' emu_smallcoder) and the tiny preset it runs anywhere: that proves the
# script, not the GPU (no nvidia-smi: no peak line).
set -eu
sc=$1 mk=$2 work=$3 preset=${4:-304m} seq=${5:-4096} steps=${6:-4} base=${7:-}
rm -rf "$work"
mkdir -p "$work"
case $preset in tiny) vocab=512 ;; mini) vocab=4096 ;; small) vocab=8192 ;; *) vocab=32768 ;; esac # host/config.c
accum=2
"$mk" "$work/data" $vocab $((seq * (steps + 2) * accum)) $((seq * 2)) >/dev/null
if [ -z "$base" ] || [ ! -f "$base/config.json" ]; then
  base=$work/base
  $sc init --preset "$preset" --seed 3 --out "$base" >/dev/null
fi
for prec in fp16 int8; do
  args="--model $base --lora 16 --base-precision $prec --seq $seq"
  echo "== $preset base, $prec, --lora 16, seq $seq, --placement offload"
  $sc train $args --plan --device cuda 2>&1 | awk '/LoRA offload/ { on = 1 } on && /host:/ { exit } on { print "   " $0 }'
  smi=""
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$work/mem-$prec.txt" 2>/dev/null &
    smi=$!
  fi
  rc=0
  $sc train --data "$work/data" $args --steps "$steps" --grad-accum $accum --eval-every 0 --save-every 0 \
    --device cuda --placement offload --out "$work/run-$prec" -q 2>"$work/log-$prec" || rc=$?
  [ -n "$smi" ] && kill "$smi" 2>/dev/null
  echo "   exit $rc"
  grep "^train: \|smallcoder train" "$work/log-$prec" | head -3 | sed 's/^/   /' || true
  if [ -f "$work/run-$prec/metrics.jsonl" ]; then
    echo "   tok/s per step: $(grep '"type":"train"' "$work/run-$prec/metrics.jsonl" |
      sed 's/.*"tok_s":\([0-9.]*\).*/\1/' | tr '\n' ' ')"
    echo "   loss per step:  $(grep '"type":"train"' "$work/run-$prec/metrics.jsonl" |
      sed 's/.*"loss":\([0-9.]\{1,7\}\).*/\1/' | tr '\n' ' ')"
  fi
  [ -s "$work/mem-$prec.txt" ] && echo "   peak device memory used (nvidia-smi): $(sort -n "$work/mem-$prec.txt" | tail -1) MiB"
  [ "$rc" = 0 ] || exit "$rc"
done
