#!/bin/sh
# train_cuda_emu.sh SMALLCODER_EMU MAKE_SHARDS — `smallcoder train --device cuda` end to end through the trainer,
# with smallcoder linked against the CPU emulator of the kernels (emu_smallcoder; not a GPU result): full and
# offload give the same losses as each other and track the FP32 CPU run (2e-3 per step: FP16 activations), stop +
# resume continues bit for bit, the start-up line names the placement, distillation from a .kd runs on both
# placements, eval --device cuda matches the CPU's loss, a planted FP16 overflow skips its step and halves the loss
# scale, overflows on every step stop the run after --max-skipped-steps, refused page locking falls back with one
# warning, 304m at seq 4096 plans offload on a simulated MX450, and --precision fp32 / a too-small --vram-budget are
# refused with one line.
set -u
sc=$1
mk=$2
dir=$(mktemp -d /tmp/sc_train_cuda_emu.XXXXXX)
# the GEMM tuner's choices are timed, so they can differ from one process to the next; a device UUID (the
# emulator has none unless given) turns on the per-GPU cache, as on a real GPU: choices are made once and shared
# by this script's runs (full, offload, resume). The cache is this run's own, not the user's or another test's.
export SC_EMU_UUID=5c5c0de0000000000000000000000001 XDG_CACHE_HOME="$dir/cache"
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
losses() { grep '"type":"train"' "$1" | sed 's/.*"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/'; }
# close A B TOL: every step's loss of metrics A within TOL of B's
close() {
  paste "$1" "$2" | awk -v tol="$3" '{ d = $2 - $4; if (d < 0) d = -d; if (d > tol || $1 != $3) bad++; if (d > m) m = d }
    END { printf "max |diff| %.2e\n", m; exit bad > 0 || NR == 0 }'
}
export OMP_NUM_THREADS=2
# the GEMM tuner (kernels/gemm.cu) times its candidates on first use of a shape; the emulator's times are noise, so
# without a cache every process could pick differently and the bit-for-bit comparisons between processes below
# would compare different GEMM paths. A UUID and a private cache directory make the first pick stick, as on a GPU.
export SC_EMU_UUID=5c0de5c0de5c0de5c0de5c0de5c0de00 XDG_CACHE_HOME="$dir/cache"

"$mk" "$dir/data" 128 30000 3000 || { echo "FAIL: cannot make shards"; exit 1; }
common="--data $dir/data --preset tiny --seq 32 --micro-batch 2 --grad-accum 2 --lr 3e-3 --eval-every 3
  --eval-tokens 128 --save-every 3 --threads 2 -q"

$sc train $common --device cpu --steps 6 --out "$dir/cpu" 2>"$dir/log_cpu" || { fail "cpu run"; cat "$dir/log_cpu"; }
losses "$dir/cpu/metrics.jsonl" >"$dir/l_cpu"
for p in full offload; do
  $sc train $common --device cuda --placement $p --steps 6 --out "$dir/$p" 2>"$dir/log_$p" ||
    { fail "$p run"; cat "$dir/log_$p"; }
  grep -q "cuda $p fp16 on .*device arena" "$dir/log_$p" || { fail "$p: start-up line"; head -2 "$dir/log_$p"; }
  losses "$dir/$p/metrics.jsonl" >"$dir/l_$p"
  echo "$p vs cpu: $(close "$dir/l_$p" "$dir/l_cpu" 2e-3)"
  close "$dir/l_$p" "$dir/l_cpu" 2e-3 >/dev/null || { fail "$p losses vs cpu"; paste "$dir/l_$p" "$dir/l_cpu"; }
  # stop after 3, resume to 6: the same losses as the straight run
  $sc train $common --device cuda --placement $p --steps 6 --stop-at 3 --out "$dir/r$p" 2>/dev/null &&
    $sc train --resume "$dir/r$p" -q 2>"$dir/log_r$p" || { fail "$p stop/resume"; cat "$dir/log_r$p"; }
  losses "$dir/r$p/metrics.jsonl" | cmp -s - "$dir/l_$p" || fail "$p: 3 + resume + 3 differs from 6 straight"
done
cmp -s "$dir/l_full" "$dir/l_offload" || { fail "full and offload losses differ"; paste "$dir/l_full" "$dir/l_offload"; }

# distillation from a .kd written by the CPU run's checkpoint
$sc teacher --model "$dir/cpu/ckpt-6" --data "$dir/data" --out "$dir/kd" -k 8 --context 64 --threads 2 -q 2>/dev/null ||
  fail "teacher"
for p in cpu full offload; do
  dev="--device cuda --placement $p"
  [ $p = cpu ] && dev="--device cpu"
  $sc train $common $dev --steps 3 --teacher-logits "$dir/kd" --out "$dir/kd_$p" 2>"$dir/log_kd" ||
    { fail "kd $p"; cat "$dir/log_kd"; }
  losses "$dir/kd_$p/metrics.jsonl" >"$dir/lk_$p"
done
close "$dir/lk_full" "$dir/lk_cpu" 2e-3 >/dev/null || { fail "kd: full vs cpu"; paste "$dir/lk_full" "$dir/lk_cpu"; }
cmp -s "$dir/lk_full" "$dir/lk_offload" || fail "kd: full and offload losses differ"

# eval on the device: the CPU's loss within 2e-3
e_cpu=$($sc eval --model "$dir/cpu/ckpt-6" --data "$dir/data" --seq 32 --max-tokens 512 --device cpu --json 2>/dev/null)
e_cuda=$($sc eval --model "$dir/cpu/ckpt-6" --data "$dir/data" --seq 32 --max-tokens 512 --device cuda --json \
  2>"$dir/err")
loss_of() { echo "$1" | sed 's/.*"loss":\([^,]*\),.*/\1/'; }
echo "eval: cpu $(loss_of "$e_cpu") cuda $(loss_of "$e_cuda")"
awk -v a="$(loss_of "$e_cpu")" -v b="$(loss_of "$e_cuda")" 'BEGIN { d = a - b; exit !(a > 0 && b > 0 && d < 2e-3 && -d < 2e-3) }' &&
  grep -q "on CUDA emulator" "$dir/err" || { fail "eval --device cuda"; echo "$e_cpu / $e_cuda"; cat "$dir/err"; }

# loss scaling (docs/cuda.md "Gradient scaling"): an inf planted in an activation gradient of backward pass 5 (the
# first sequence of step 2) skips step 2, halves the scale, and the run finishes; step 1 is the straight run's
skipv() { grep '"type":"train"' "$1" | sed 's/.*"step":\([0-9]*\),.*"loss_scale":\([^,]*\),"skipped":\([01]\),.*/\1 \2 \3/'; }
SMALLCODER_TEST_OVERFLOW=5 $sc train $common --device cuda --placement full --steps 4 --out "$dir/ovf" 2>"$dir/err" ||
  { fail "planted overflow run"; cat "$dir/err"; }
skipv "$dir/ovf/metrics.jsonl" >"$dir/sv"
printf '1 65536 0\n2 32768 1\n3 32768 0\n4 32768 0\n' | cmp -s - "$dir/sv" ||
  { fail "planted overflow: step 2 skipped with the scale halved"; cat "$dir/sv"; }
[ "$(losses "$dir/ovf/metrics.jsonl" | head -1)" = "$(head -1 "$dir/l_full")" ] || fail "planted overflow: step 1 changed"
# an overflow on every pass: after --max-skipped-steps in a row, a checkpoint and one line, exit 1
SMALLCODER_TEST_OVERFLOW=1+ $sc train $common --device cuda --placement offload --steps 6 --max-skipped-steps 3 \
  --out "$dir/stall" 2>"$dir/err"
rc=$?
[ $rc -eq 1 ] && [ -d "$dir/stall/ckpt-3" ] && [ "$(grep -c "^smallcoder train:" "$dir/err")" -eq 1 ] &&
  tail -1 "$dir/err" | grep -q "^smallcoder train: stopped after step 3: 3 steps in a row were skipped" ||
  { fail "--max-skipped-steps 3 (rc $rc)"; cat "$dir/err"; ls "$dir/stall"; }
# page locking refused (WSL2, RLIMIT_MEMLOCK): one warning line, pageable buffers, the same losses
EMU_NO_PINNED=1 $sc train $common --device cuda --placement offload --steps 6 --out "$dir/nopin" 2>"$dir/err" ||
  { fail "offload without pinned memory"; cat "$dir/err"; }
[ "$(grep -c "warning: cannot pin" "$dir/err")" -eq 1 ] || { fail "pinned fallback: one warning"; cat "$dir/err"; }
losses "$dir/nopin/metrics.jsonl" | cmp -s - "$dir/l_offload" || fail "pinned fallback: losses differ"

# a simulated MX450 (2 GiB, 300 MiB taken by the context): 304m at seq 4096 picks offload, which fits
EMU_DEVICE=mx450 $sc train --plan --preset 304m --seq 4096 --device cuda >"$dir/plan" 2>&1 || { fail "mx450 plan"; cat "$dir/plan"; }
grep -q "chosen placement: offload" "$dir/plan" && grep -q "fits the device budget" "$dir/plan" &&
  grep -q "CUDA context, cuBLAS, kernels *300.0 MiB  measured on NVIDIA GeForce MX450" "$dir/plan" ||
  { fail "mx450: 304m seq 4096 plan"; cat "$dir/plan"; }
echo "mx450 plan: $(grep "chosen placement" "$dir/plan"); $(grep "fits the device budget" "$dir/plan" | sed 's/^ *//')"

# refusals: one line, exit 1
$sc train $common --device cuda --precision fp32 --steps 1 --out "$dir/x" 2>"$dir/err"
[ $? -eq 1 ] && grep -q "FP16 mixed precision only" "$dir/err" || { fail "--precision fp32 on cuda"; cat "$dir/err"; }
$sc train $common --device cuda --vram-budget 1MiB --steps 1 --out "$dir/x" 2>"$dir/err"
[ $? -eq 1 ] && grep -q "over --vram-budget" "$dir/err" || { fail "--vram-budget 1MiB"; cat "$dir/err"; }

[ $fails -eq 0 ] && echo "train_cuda_emu: all passed" || echo "train_cuda_emu: $fails failed"
[ $fails -eq 0 ]
