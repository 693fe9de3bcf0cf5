#!/bin/sh
# open_models_cuda_emu.sh SMALLCODER_EMU MAKE_SHARDS SOURCE_DIR [FAMILY ...] — `train --model DIR --device cuda` and
# `eval --device cuda` on open-model-shaped directories (issue 17: tests/reference/open_models.py, 1 layer, widths
# kept, vocabulary cut to 4096 and padded: the shards use 512 ids), smallcoder linked against the CPU emulator of the
# kernels (emu_smallcoder; not a GPU result). Per family: 4 steps on the CPU and on CUDA (placement full); CUDA
# tracks the CPU's losses (FP16 activations: step 1 within 2e-3, the later ones, where AdamW has amplified the
# difference, within 1e-2); eval --device cuda within 2e-3 of the CPU's loss. On the
# first family (qwen2 biases by default) also: offload = full bit for bit; stop at 2 + --resume = 4 straight, bit
# for bit; a CUDA checkpoint resumes on the CPU and a CPU checkpoint on CUDA (steps 3-4 within 1e-2 of the CPU run's),
# both checkpoints name the same tensors and moments (bias moments included); teacher --device cuda (the CUDA
# inference engine) writes .kd files whose distillation losses (2 CPU steps) are the CPU model's .kd's within 1e-2.
# The other families (rope_scaling linear + untied head, llama3 + head_dim field) take the short path: the emulator
# runs full widths at a few tokens per second.
set -u
sc=$1
mk=$2
src=$3
shift 3
families=${*:-qwen2.5-coder-0.5b deepseek-coder-1.3b llama-3.2-1b}
. "$src/tests/open_models_lib.sh"
dir=$(mktemp -d /tmp/sc_open_cuda_emu.XXXXXX)
# a device UUID and a private cache: the GEMM tuner's first choice sticks across this script's processes, so the
# bit-for-bit comparisons between runs compare the same GEMM paths (as train_cuda_emu.sh)
export SC_EMU_UUID=5c5c0de0000000000000000000000017 XDG_CACHE_HOME="$dir/cache" OMP_NUM_THREADS=2
# every GEMM through cuBLAS (OpenBLAS on the emulator): timing the emulated SIMT kernel at these widths would take
# minutes; the candidates are compared with each other in emu_test_matmul
export SMALLCODER_GEMM=cublas
trap 'rm -rf "$dir"' EXIT
trap 'exit 143' INT TERM HUP # a killed run (ctest's timeout, Ctrl-C) still removes its GBs of models
losses() { grep '"type":"train"' "$1" | sed 's/.*"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/'; }
# close A B TOL [TOL1]: every step's loss of A within TOL of B's (step 1 within TOL1), same steps
close() {
  paste "$1" "$2" | awk -v tol="$3" -v tol1="${4:-$3}" '{ d = $2 - $4; if (d < 0) d = -d; t = $1 == 1 ? tol1 : tol
    if (d > t || $1 != $3) bad++; if (d > m) m = d; if ($1 == 1) { f = d; s1 = 1 } }
    END { if (s1) printf "step 1 |diff| %.2e, ", f; printf "max %.2e", m; exit bad > 0 || NR == 0 }'
}
# the tensor names of a safetensors file, sorted
names() {
  /usr/bin/python3 -c 'import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]
print("\n".join(sorted(k for k in json.loads(f.read(n)) if k != "__metadata__")))' "$1"
}

"$mk" "$dir/data" 512 20000 2000 || { echo "FAIL: cannot make shards"; exit 1; }
"$mk" "$dir/kdata" 512 200 64 || { echo "FAIL: cannot make shards"; exit 1; }
common="--data $dir/data --seq 32 --micro-batch 1 --grad-accum 2 --lr 1e-3 --eval-every 0 --save-every 2 --steps 4
  --threads 2 -q"

first=${families%% *}
for fam in $families; do
  m=$dir/$fam
  /usr/bin/python3 "$src/tests/reference/open_models.py" --family "$fam" --out "$m" --layers 1 --vocab 4096 \
    --dtype BF16 --shards 2 --seed 5 || { fail "$fam: generator"; continue; }
  run=$dir/$fam.run
  $sc train --model "$m" $common --device cpu --out "$run.cpu" 2>"$dir/err" || { fail "$fam cpu"; cat "$dir/err"; }
  losses "$run.cpu/metrics.jsonl" >"$dir/l_cpu"
  placements="full offload"
  [ "$fam" = "$first" ] || placements=full
  for p in $placements; do
    $sc train --model "$m" $common --device cuda --placement $p --out "$run.$p" 2>"$dir/err" ||
      { fail "$fam cuda $p"; cat "$dir/err"; }
    losses "$run.$p/metrics.jsonl" >"$dir/l_$p"
    echo "$fam cuda $p vs cpu: $(close "$dir/l_$p" "$dir/l_cpu" 1e-2 2e-3)"
    close "$dir/l_$p" "$dir/l_cpu" 1e-2 2e-3 >/dev/null || { fail "$fam: cuda $p losses vs cpu"; paste "$dir/l_$p" "$dir/l_cpu"; }
  done
  # eval on the device: the CPU's loss within 2e-3
  e_cpu=$($sc eval --model "$m" --data "$dir/data" --seq 32 --max-tokens 256 --device cpu --threads 2 --json 2>/dev/null)
  e_cuda=$($sc eval --model "$m" --data "$dir/data" --seq 32 --max-tokens 256 --device cuda --json 2>"$dir/err")
  a=$(echo "$e_cpu" | sed 's/.*"loss":\([^,]*\),.*/\1/') b=$(echo "$e_cuda" | sed 's/.*"loss":\([^,]*\),.*/\1/')
  echo "$fam eval: cpu $a cuda $b"
  awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; exit !(a > 0 && b > 0 && d < 2e-3 && -d < 2e-3) }' &&
    grep -q "on CUDA emulator" "$dir/err" || { fail "$fam: eval --device cuda"; cat "$dir/err"; }
  if [ "$fam" = "$first" ]; then
    cmp -s "$dir/l_full" "$dir/l_offload" || { fail "$fam: full and offload losses differ"; paste "$dir/l_full" "$dir/l_offload"; }
    # stop after 2, resume to 4 on the same engine: the straight run's losses, bit for bit
    $sc train --model "$m" $common --device cuda --placement full --stop-at 2 --out "$run.stop" 2>"$dir/err" &&
      cp -r "$run.stop" "$run.tocpu" && $sc train --resume "$run.stop" -q 2>"$dir/err" ||
      { fail "$fam: cuda stop/resume"; cat "$dir/err"; }
    losses "$run.stop/metrics.jsonl" | cmp -s - "$dir/l_full" || fail "$fam: cuda 2 + resume + 2 differs from 4 straight"
    # across engines: the CUDA checkpoint continues on the CPU, the CPU's ckpt-2 on CUDA
    $sc train --resume "$run.tocpu" --device cpu -q 2>"$dir/err" || { fail "$fam: cuda ckpt resumed on cpu"; cat "$dir/err"; }
    cp -r "$run.cpu" "$run.tocuda" && rm -rf "$run.tocuda/ckpt-4" &&
      $sc train --resume "$run.tocuda" --device cuda -q 2>"$dir/err" || { fail "$fam: cpu ckpt resumed on cuda"; cat "$dir/err"; }
    for x in tocpu tocuda; do
      losses "$run.$x/metrics.jsonl" | tail -n 2 >"$dir/l_x"
      tail -n 2 "$dir/l_cpu" >"$dir/l_c"
      echo "$fam resumed $x, steps 3-4 vs cpu: $(close "$dir/l_x" "$dir/l_c" 1e-2)"
      close "$dir/l_x" "$dir/l_c" 1e-2 >/dev/null || { fail "$fam: resumed $x"; paste "$dir/l_x" "$dir/l_c"; }
    done
    for f in model.safetensors optimizer.safetensors; do
      names "$run.full/ckpt-4/$f" >"$dir/n_cuda" && names "$run.cpu/ckpt-4/$f" >"$dir/n_cpu" && [ -s "$dir/n_cpu" ] &&
        cmp -s "$dir/n_cuda" "$dir/n_cpu" || fail "$fam: $f of a CUDA checkpoint names other tensors than the CPU's"
    done
    grep -q "bias" "$dir/n_cpu" || [ "$fam" != qwen2.5-coder-0.5b ] || fail "$fam: no bias moments in the checkpoint"
    # the teacher on the CUDA engine: its .kd trains like the CPU model's
    $sc teacher --model "$m" --data "$dir/kdata" --out "$run.kd_cpu" -k 8 --context 64 --device cpu --threads 2 -q \
      2>"$dir/err" >/dev/null || { fail "$fam: teacher --device cpu"; cat "$dir/err"; }
    $sc teacher --model "$m" --data "$dir/kdata" --out "$run.kd_cuda" -k 8 --context 64 --device cuda 2>"$dir/err" \
      >/dev/null && grep -q "CUDA engine" "$dir/err" || { fail "$fam: teacher --device cuda"; cat "$dir/err"; }
    for k in cpu cuda; do
      $sc train --model "$m" --data "$dir/kdata" --teacher-logits "$run.kd_$k" --seq 32 --grad-accum 1 --eval-every 0 \
        --steps 2 --save-every 0 --threads 2 --device cpu -q --out "$run.kdrun_$k" 2>"$dir/err" ||
        { fail "$fam: train --teacher-logits (teacher on $k)"; cat "$dir/err"; }
      losses "$run.kdrun_$k/metrics.jsonl" >"$dir/lk_$k"
    done
    echo "$fam distillation from the CUDA teacher vs the CPU teacher: $(close "$dir/lk_cuda" "$dir/lk_cpu" 1e-2)"
    close "$dir/lk_cuda" "$dir/lk_cpu" 1e-2 >/dev/null || { fail "$fam: CUDA teacher's .kd"; paste "$dir/lk_cuda" "$dir/lk_cpu"; }
  fi
done

[ $fails -eq 0 ] && echo "open_models_cuda_emu: all passed" || echo "open_models_cuda_emu: $fails failed"
[ $fails -eq 0 ]
