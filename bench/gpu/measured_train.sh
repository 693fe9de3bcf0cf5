# bench/gpu/measured_train.sh — sourced by train_cuda.sh and train_lora_cuda.sh (which set $sc and $work):
#   measured_train TAG RUN LOG ARGS...  runs `$sc train ARGS... --out RUN -q 2>LOG` while nvidia-smi (when present)
#                                       samples the whole GPU's used memory every 100 ms; $rc = train's exit status
#   measured_report TAG RUN             prints tok/s and loss of every step (RUN/metrics.jsonl) and the sampled peak
# Both return 0 so that callers under `set -e` go on to print what the run left.
measured_train() {
  mt_tag=$1 mt_run=$2 mt_log=$3
  shift 3
  mt_smi=""
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$work/mem-$mt_tag.txt" 2>/dev/null &
    mt_smi=$!
  fi
  rc=0
  $sc train "$@" --out "$mt_run" -q 2>"$mt_log" || rc=$?
  if [ -n "$mt_smi" ]; then kill "$mt_smi" 2>/dev/null || true; fi
  return 0
}

measured_report() {
  if [ -f "$2/metrics.jsonl" ]; then
    echo "   tok/s per step: $(grep '"type":"train"' "$2/metrics.jsonl" |
      sed 's/.*"tok_s":\([0-9.]*\).*/\1/' | tr '\n' ' ')"
    echo "   loss per step:  $(grep '"type":"train"' "$2/metrics.jsonl" |
      sed 's/.*"loss":\([0-9.]\{1,7\}\).*/\1/' | tr '\n' ' ')"
  fi
  if [ -s "$work/mem-$1.txt" ]; then
    echo "   peak device memory used (nvidia-smi): $(sort -n "$work/mem-$1.txt" | tail -1) MiB"
  fi
  return 0
}
