#!/bin/sh
# bench/gpu/train_cuda.sh SMALLCODER MAKE_SHARDS WORKDIR [PRESET] [SEQ] [STEPS] [GRAD_ACCUM] — training on the GPU (a stage of
# bench/gpu-suite): `smallcoder train --device cuda` in the full placement and in offload under
# --vram-budget 1.75GiB, on synthetic shards (GRAD_ACCUM sequences per step, default 4); prints the start-up line (placement, device, arena), the tok/s of
# every step (the first includes warm-up), and the peak device memory nvidia-smi saw during each run (the whole
# GPU: includes the CUDA context and cuBLAS; sampled every 100 ms, so a short peak can be missed).
set -eu
. "$(dirname "$0")/measured_train.sh"
sc=$1 mk=$2 work=$3 preset=${4:-304m} seq=${5:-4096} steps=${6:-6} accum=${7:-4}
rm -rf "$work"
mkdir -p "$work"
case $preset in tiny) vocab=512 ;; mini) vocab=4096 ;; small) vocab=8192 ;; *) vocab=32768 ;; esac # host/config.c
"$mk" "$work/data" $vocab $((seq * (steps + 2) * accum)) $((seq * 2)) >/dev/null
for p in full offload; do
  budget=""
  [ "$p" = offload ] && budget="--vram-budget 1.75GiB"
  measured_train "$p" "$work/run-$p" "$work/log-$p" --data "$work/data" --preset "$preset" --seq "$seq" \
    --steps "$steps" --grad-accum "$accum" --eval-every 0 --save-every 0 --device cuda --placement "$p" $budget
  echo "== $preset seq $seq, --placement $p $budget: exit $rc"
  grep "^train: \|smallcoder train" "$work/log-$p" | head -2 || true
  measured_report "$p" "$work/run-$p"
  rm -rf "$work/run-$p" # the checkpoint written at the end (GBs for 304m)
done
