#!/bin/sh
# train_lora_cuda_emu.sh SMALLCODER_EMU MAKE_SHARDS — `train --lora --device cuda` end to end through the trainer
# with smallcoder linked against the CPU emulator of the kernels (not a GPU result): the start-up line names the
# CUDA LoRA backend, its losses track the CPU LoRA run on the same FP16 base (dropout on: the same masks), stop +
# resume continues bit for bit (adapter, moments, losses), a CUDA checkpoint resumes on the CPU and a CPU one on
# CUDA (the same PEFT files), eval --lora --device cuda tracks the CPU's, an INT8 base trains, --teacher-logits
# distils, --plan prints the LoRA rows, and --base-precision fp32 on CUDA is refused with one line.
set -u
sc=$1
mk=$2
dir=$(mktemp -d /tmp/sc_train_lora_emu.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/../cli_expect.sh"
losses() { grep '"type":"train"' "$1" | sed 's/.*"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/'; }
close() {
  paste "$1" "$2" | awk -v tol="$3" '{ d = $2 - $4; if (d < 0) d = -d; if (d > tol || $1 != $3) bad++; if (d > m) m = d }
    END { printf "max |diff| %.2e\n", m; exit bad > 0 || NR == 0 }'
}
# a private GEMM cache with a device UUID: the tuner's first choice sticks across this script's processes
export OMP_NUM_THREADS=2 SC_EMU_UUID=5c0de5c0de5c0de5c0de5c0de5c0de16 XDG_CACHE_HOME="$dir/cache"

"$mk" "$dir/data" 128 30000 3000 >/dev/null || { echo "FAIL: cannot make shards"; exit 1; }
$sc train --data "$dir/data" --preset tiny --seq 32 --grad-accum 1 --lr 3e-3 --steps 10 --eval-every 0 --device cpu \
  --threads 2 -q --out "$dir/pre" 2>"$dir/err" || { echo "FAIL: pretrain"; cat "$dir/err"; exit 1; }
base=$dir/pre/ckpt-10
common="--data $dir/data --model $base --lora 4 --lora-dropout 0.1 --seq 32 --micro-batch 2 --grad-accum 2 --lr 3e-3
  --warmup 1 --steps 6 --save-every 3 --eval-every 3 --eval-tokens 128 --threads 2 -q --base-precision fp16"

$sc train $common --device cpu --out "$dir/cpu" 2>"$dir/log_cpu" || { fail "cpu LoRA run"; cat "$dir/log_cpu"; }
$sc train $common --device cuda --out "$dir/cuda" 2>"$dir/log_cuda" || { fail "cuda LoRA run"; cat "$dir/log_cuda"; }
grep -q "cuda lora fp16 on .*device arena" "$dir/log_cuda" || { fail "start-up line"; head -2 "$dir/log_cuda"; }
losses "$dir/cpu/metrics.jsonl" >"$dir/l_cpu"
losses "$dir/cuda/metrics.jsonl" >"$dir/l_cuda"
echo "cuda vs cpu LoRA losses: $(close "$dir/l_cuda" "$dir/l_cpu" 3e-3)"
close "$dir/l_cuda" "$dir/l_cpu" 3e-3 >/dev/null || { fail "cuda LoRA losses vs cpu"; paste "$dir/l_cuda" "$dir/l_cpu"; }
for f in adapter_config.json adapter_model.safetensors optimizer.safetensors trainer_state.json; do
  [ -f "$dir/cuda/ckpt-6/$f" ] || fail "cuda/ckpt-6 lacks $f"
done

# eval --lora on CUDA (the FP16 base, the adapter unmerged on the device) against the CPU's (FP32 base)
$sc eval --model "$base" --lora "$dir/cuda/ckpt-6" --data "$dir/data" --seq 32 --max-tokens 256 --json --device cuda \
  >"$dir/ev_cuda" 2>"$dir/err" || { fail "eval --lora --device cuda"; cat "$dir/err"; }
grep -q "cuda lora\|device arena" "$dir/err" || { fail "eval --lora --device cuda: no device line"; cat "$dir/err"; }
$sc eval --model "$base" --lora "$dir/cuda/ckpt-6" --data "$dir/data" --seq 32 --max-tokens 256 --json --device cpu \
  --threads 2 >"$dir/ev_cpu" 2>/dev/null || fail "eval --lora --device cpu"
ec=$(sed -n 's/.*"loss":\([0-9.]*\).*/\1/p' "$dir/ev_cuda")
ep=$(sed -n 's/.*"loss":\([0-9.]*\).*/\1/p' "$dir/ev_cpu")
echo "eval --lora: cuda $ec, cpu $ep"
awk -v a="$ec" -v b="$ep" 'BEGIN { d = a - b; exit !(b > 0 && d < 3e-3 && d > -3e-3) }' ||
  fail "eval --lora: cuda loss $ec, cpu $ep"

# stop at 3, resume to 6 on CUDA: the same adapter, moments and losses as the straight run
$sc train $common --device cuda --stop-at 3 --out "$dir/r" 2>/dev/null && $sc train --resume "$dir/r" -q 2>"$dir/err" ||
  { fail "cuda stop/resume"; cat "$dir/err"; }
for f in adapter_model.safetensors optimizer.safetensors; do
  cmp -s "$dir/cuda/ckpt-6/$f" "$dir/r/ckpt-6/$f" || fail "cuda: resumed $f differs from the straight run's"
done
losses "$dir/r/metrics.jsonl" | cmp -s - "$dir/l_cuda" || fail "cuda: 3 + resume + 3 losses differ from 6 straight"

# checkpoints move between devices: a CUDA checkpoint resumes on the CPU, a CPU one on CUDA
$sc train --resume "$dir/cuda/ckpt-3" --device cpu --out "$dir/x2cpu" -q 2>"$dir/err" &&
  [ -f "$dir/x2cpu/ckpt-6/adapter_model.safetensors" ] || { fail "cuda checkpoint resumed on the cpu"; cat "$dir/err"; }
$sc train --resume "$dir/cpu/ckpt-3" --device cuda --out "$dir/x2cuda" -q 2>"$dir/err" &&
  [ -f "$dir/x2cuda/ckpt-6/adapter_model.safetensors" ] || { fail "cpu checkpoint resumed on cuda"; cat "$dir/err"; }

# an INT8 base (dequantized before each GEMM) against the CPU's INT8-rounded base
$sc train $common --device cuda --base-precision int8 --steps 3 --out "$dir/i8" 2>"$dir/err" ||
  { fail "cuda int8 base"; cat "$dir/err"; }
$sc train $common --device cpu --base-precision int8 --steps 3 --out "$dir/i8cpu" 2>/dev/null || fail "cpu int8 base"
losses "$dir/i8/metrics.jsonl" >"$dir/l_i8"
losses "$dir/i8cpu/metrics.jsonl" >"$dir/l_i8cpu"
echo "int8 base, cuda vs cpu: $(close "$dir/l_i8" "$dir/l_i8cpu" 3e-3)"
close "$dir/l_i8" "$dir/l_i8cpu" 3e-3 >/dev/null || { fail "int8 base losses vs cpu"; paste "$dir/l_i8" "$dir/l_i8cpu"; }

# distillation through the same loss hook
$sc teacher --model "$base" --data "$dir/data" --out "$dir/kd" -k 8 --context 64 --threads 2 -q 2>/dev/null || fail "teacher"
$sc train $common --device cuda --steps 2 --teacher-logits "$dir/kd" --out "$dir/k" 2>"$dir/err" ||
  { fail "cuda LoRA + teacher-logits"; cat "$dir/err"; }
[ -f "$dir/k/ckpt-2/adapter_model.safetensors" ] || fail "cuda LoRA + teacher-logits wrote no adapter"

# the plan: LoRA rows from the layout the backend allocates
$sc train --model "$base" --lora 4 --base-precision int8 --seq 64 --plan --device cuda >"$dir/plan" 2>"$dir/err" ||
  { fail "--plan"; cat "$dir/err"; }
for row in "memory plan: cuda LoRA full" "memory plan: cuda LoRA offload" "base linear layers (frozen)" \
  "dequant scratch" "adapter weights" "adapter grads" "activation checkpoints" "adapter, grads, AdamW m, v"; do
  grep -q "$row" "$dir/plan" || { fail "--plan lacks '$row'"; cat "$dir/plan"; }
done
expect 1 "base-precision fp32: the CUDA LoRA base is FP16 or INT8" \
  $sc train --data "$dir/data" --model "$base" --lora 4 --device cuda --base-precision fp32 --out "$dir/no"
[ -e "$dir/no" ] && fail "a refused run left a directory"
echo "train_lora_cuda_emu: $fails failure(s)"
[ $fails -eq 0 ]
