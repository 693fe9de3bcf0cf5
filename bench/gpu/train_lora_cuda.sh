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
. "$(dirname "$0")/measured_train.sh"
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
  measured_train "$prec" "$work/run-$prec" "$work/log-$prec" --data "$work/data" $args --steps "$steps" \
    --grad-accum $accum --eval-every 0 --save-every 0 --device cuda --placement offload
  echo "   exit $rc"
  grep "^train: \|smallcoder train" "$work/log-$prec" | head -3 | sed 's/^/   /' || true
  measured_report "$prec" "$work/run-$prec"
  [ "$rc" = 0 ] || exit "$rc"
done
