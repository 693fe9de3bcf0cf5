#!/bin/sh
# bench/gpu/train_cuda.sh SMALLCODER MAKE_SHARDS WORKDIR [PRESET] [SEQ] [STEPS] [GRAD_ACCUM] — training on the GPU (a stage of
# bench/gpu-suite): `smallcoder train --device cuda` in the full placement and in offload under
# --vram-budget 1.75GiB, on synthetic shards (GRAD_ACCUM sequences per step, default 4); prints the start-up line (placement, device, arena), the tok/s of
# every step (the first includes warm-up), and the peak device memory nvidia-smi saw during each run (the whole
# GPU: includes the CUDA context and cuBLAS; sampled every 100 ms, so a short peak can be missed).
set -eu
sc=$1 mk=$2 work=$3 preset=${4:-304m} seq=${5:-4096} steps=${6:-6} accum=${7:-4}
rm -rf "$work"
mkdir -p "$work"
case $preset in tiny) vocab=512 ;; mini) vocab=4096 ;; small) vocab=8192 ;; *) vocab=32768 ;; esac # host/config.c
"$mk" "$work/data" $vocab $((seq * (steps + 2) * accum)) $((seq * 2)) >/dev/null
for p in full offload; do
  budget=""
  [ "$p" = offload ] && budget="--vram-budget 1.75GiB"
  smi=""
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$work/mem-$p.txt" 2>/dev/null &
    smi=$!
  fi
  rc=0
  $sc train --data "$work/data" --preset "$preset" --seq "$seq" --steps "$steps" --grad-accum "$accum" \
    --eval-every 0 --save-every 0 \
    --device cuda --placement "$p" $budget --out "$work/run-$p" -q 2>"$work/log-$p" || rc=$?
  [ -n "$smi" ] && kill "$smi" 2>/dev/null
  echo "== $preset seq $seq, --placement $p $budget: exit $rc"
  grep "^train: \|smallcoder train" "$work/log-$p" | head -2 || true
  if [ -f "$work/run-$p/metrics.jsonl" ]; then
    echo "   tok/s per step: $(grep '"type":"train"' "$work/run-$p/metrics.jsonl" |
      sed 's/.*"tok_s":\([0-9.]*\).*/\1/' | tr '\n' ' ')"
    echo "   loss per step:  $(grep '"type":"train"' "$work/run-$p/metrics.jsonl" |
      sed 's/.*"loss":\([0-9.]\{1,7\}\).*/\1/' | tr '\n' ' ')"
  fi
  [ -s "$work/mem-$p.txt" ] && echo "   peak device memory used (nvidia-smi): $(sort -n "$work/mem-$p.txt" | tail -1) MiB"
  rm -rf "$work/run-$p" # the checkpoint written at the end (GBs for 304m)
done
