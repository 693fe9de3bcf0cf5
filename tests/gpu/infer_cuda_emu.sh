#!/bin/sh
# infer_cuda_emu.sh SMALLCODER_EMU SOURCE_DIR — the inference commands on the CUDA engine, with smallcoder linked
# against the CPU emulator of the kernels (emu_smallcoder; not a GPU result): on a random tiny model with a
# tokenizer trained here, `complete --device cuda` (FP16, and INT8 on a quantized directory) prints what the CPU
# prints (greedy), the start-up line names the precision --precision auto chose, `infer-bench --device cuda --json`
# reports the engine and its device memory, `serve --device cuda --parallel 2` answers /completion with the text of
# `complete` from both slots, a bad --precision is refused with one line, and `complete --draft --lookup` on the
# CUDA engine prints the plain greedy text; with LoRA adapters (third argument: tests/lora_test_adapter), complete
# --device cuda --lora prints the CPU's --lora text and serve --device cuda answers requests choosing adapters.
set -u
sc=$1
src=$2
dir=$(mktemp -d /tmp/sc_infer_cuda_emu.XXXXXX)
# the GEMM tuner's choices are timed, so they can differ from one process to the next; a device UUID (the
# emulator has none unless given) turns on the per-GPU cache, as on a real GPU: choices are made once and shared
# by this script's runs (full, offload, resume). The cache is this run's own, not the user's or another test's.
export SC_EMU_UUID=5c5c0de0000000000000000000000001 XDG_CACHE_HOME="$dir/cache"
. "$src/tests/serve_start.sh"
trap serve_cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export OMP_NUM_THREADS=2

$sc init --preset tiny --seed 7 --std 0.1 --out "$dir/fp32" >/dev/null 2>&1 ||
  $sc init --preset tiny --seed 7 --out "$dir/fp32" >/dev/null || { echo "FAIL: init"; exit 1; }
# the tokenizer is trained on a generated corpus, not on the source tree: an edit of host/ changed its ids and so
# the greedy texts compared below, and one such edit put a near-tie into the --lora text that split FP16 (CUDA)
# from FP32 (CPU) at the second token (--lora-scaled A:0.97 and A:1.03 agreed)
mkdir "$dir/corpus" &&
  awk 'BEGIN { for (i = 0; i < 3000; i++)
    printf "static int f%d(int x, char *s) { return s[x %% %d] * %d + (x << %d); }\n", i, i % 7 + 1, i % 13, i % 5 }' \
    >"$dir/corpus/c.c"
$sc tokenizer train -q --vocab-size 512 --ext .c,.h --out "$dir/fp32/tokenizer.json" "$dir/corpus" >/dev/null 2>&1 ||
  { echo "FAIL: tokenizer train"; exit 1; }
$sc quantize --model "$dir/fp32" --out "$dir/int8" >/dev/null 2>&1 || { echo "FAIL: quantize"; exit 1; }

# complete: CUDA (emulated) vs CPU, greedy
for m in fp32 int8; do
  want=$($sc complete --model "$dir/$m" --device cpu --prompt "int main(void) {" -n 16 2>/dev/null)
  got=$($sc complete --model "$dir/$m" --device cuda --prompt "int main(void) {" -n 16 2>"$dir/err_$m")
  p=fp16; [ $m = int8 ] && p=int8
  grep -q "cuda engine: .*precision $p (auto" "$dir/err_$m" || fail "$m: no 'precision $p (auto' line: $(cat "$dir/err_$m")"
  if [ "$got" = "$want" ]; then echo "complete $m: cuda = cpu ('$(printf %s "$got" | head -c 40)...')"
  else
    # INT8 prefill is W8A16 on CUDA, W8A8 on the CPU: a random model's near-ties may differ; FP16 must agree.
    # (7 characters agree on the generated corpus's tokenizer): a broken INT8 path differs at once; the numbers
    # are checked in emu_test_infer_engine
    n=$(/usr/bin/python3 -c 'import os,sys; print(len(os.path.commonprefix([sys.argv[1], sys.argv[2]])))' "$got" "$want")
    echo "complete $m: cuda and cpu agree on the first $n of ${#want} characters"
    [ $m = int8 ] && [ "$n" -ge 4 ] || fail "complete $m --device cuda '$got' differs from the CPU's '$want'"
  fi
done
# speculative decoding on the CUDA engine (both models on it; K <= 7, the GEMV path): the plain greedy text
want=$($sc complete --model "$dir/fp32" --device cuda --prompt "int main(void) {" -n 16 2>/dev/null)
got=$($sc complete --model "$dir/fp32" --device cuda --prompt "int main(void) {" -n 16 --draft "$dir/int8" \
  --draft-min-p 0 --draft-fixed 4 --lookup 2 2>"$dir/err")
[ "$got" = "$want" ] || fail "complete --device cuda --draft: '$got' differs from '$want'"
grep -q "drafted [1-9]" "$dir/err" || fail "complete --device cuda --draft drafted nothing: $(cat "$dir/err")"
echo "speculative on cuda: $(grep speculative "$dir/err")"
$sc complete --model "$dir/fp32" --device cuda --precision int8 --prompt "x" -n 2 2>"$dir/err" >/dev/null &&
  grep -q "precision int8 (asked for" "$dir/err" || fail "--precision int8 on an FP32 model: $(cat "$dir/err")"
$sc complete --model "$dir/fp32" --device cuda --precision bf16 --prompt "x" -n 2 2>"$dir/err" >/dev/null &&
  fail "--precision bf16 accepted"
[ "$(wc -l <"$dir/err")" = 1 ] && grep -q "precision must be auto, fp16 or int8" "$dir/err" ||
  fail "bad --precision message: $(cat "$dir/err")"

# a simulated MX450: the start-up line carries the measured context row (300 MiB), tiny stays FP16 by the
# bandwidth rule (its decode ceiling is far above 250 tok/s)
EMU_DEVICE=mx450 $sc complete --model "$dir/fp32" --device cuda --prompt "x" -n 2 2>"$dir/err" >/dev/null &&
  grep -q "CUDA context, cuBLAS, kernels 300.0 MiB (measured" "$dir/err" &&
  grep -q "precision fp16 (auto: FP16 fits and its decode ceiling is" "$dir/err" ||
  fail "mx450 complete: $(cat "$dir/err")"

# infer-bench: the JSON names the engine and its device memory
$sc infer-bench --model "$dir/int8" --device cuda -p 12 -n 6 -r 1 --json >"$dir/bench.json" 2>/dev/null ||
  fail "infer-bench --device cuda"
/usr/bin/python3 - "$dir/bench.json" <<'PY' || fail "infer-bench JSON: $(cat "$dir/bench.json")"
import json, sys
d = json.loads(open(sys.argv[1]).read())
assert d["device"] == "cuda" and d["weights"] == "int8", d
assert d["peak_device_mib"] > 0 and d["device_used_mib"] >= d["peak_device_mib"] - 0.01, d
assert d["context_mib"] >= 0, d  # the emulator's default device has no context (EMU_DEVICE=mx450 has 300 MiB)
print("infer-bench --device cuda: %(weights)s, planned %(peak_device_mib).1f MiB, measured %(device_used_mib).1f MiB" % d)
PY

# serve on the CUDA engine, two slots (two preallocated KV caches): both answer like `complete`, with the FP16 and
# the 8-bit KV cache (--kv q8: the slots' caches quantized on the device)
for kv in f16 q8; do
# to a file, not a shell variable: a random model may emit a NUL byte, which the shell would drop
$sc complete --model "$dir/fp32" --device cuda --kv $kv --prompt "int main(" -n 10 >"$dir/want" 2>/dev/null
if ! try_start --model "$dir/fp32" --device cuda --kv $kv --parallel 2; then
  fail "serve --device cuda --kv $kv did not start: $(cat "$dir/serve.log")"
else
  for r in 1 2 3; do
    curl -s -o "$dir/body" "http://127.0.0.1:$port/completion" \
      -d '{"prompt":"int main(","n_predict":10,"temperature":0}' || fail "serve --kv $kv request $r"
    # a random model emits bytes that are not UTF-8: the server's JSON has each such byte, and NUL, as U+FFFD
    # (serve_utf8_clean), so complete's bytes are cleaned the same way (one U+FFFD per invalid byte) to compare
    got=$(/usr/bin/python3 -c 'import json,sys; sys.stdout.buffer.write(json.load(open(sys.argv[1], encoding="utf-8"))["content"].encode())' \
      "$dir/body")
    want_clean=$(/usr/bin/python3 -c 'import codecs,sys
codecs.register_error("byte", lambda e: ("\ufffd", e.start + 1))
sys.stdout.buffer.write(sys.stdin.buffer.read().decode("utf-8", "byte").replace("\0", "\ufffd").encode())' <"$dir/want")
    [ "$got" = "$want_clean" ] || fail "serve --kv $kv request $r: '$got' differs from complete '$want_clean'"
  done
  grep -q "cuda engine: .*($kv, 2 x " "$dir/serve.log" || fail "serve did not plan 2 $kv KV caches: $(cat "$dir/serve.log")"
  stop
fi
done

# LoRA adapters on the CUDA engine (random PEFT adapters from tests/lora_test_adapter, the optional third
# argument): complete --device cuda --lora A prints the CPU's --lora A text (FP16) and not the base's; serve
# --device cuda --lora A=.. --lora B=.. answers requests choosing A or B with complete --device cuda's texts
mk=${3:-}
if [ -n "$mk" ] && [ -x "$mk" ]; then
  "$mk" "$dir/fp32" "$dir/la" 1 0.5 && "$mk" "$dir/fp32" "$dir/lb" 3 0.5 q,v,down 2 || fail "lora_test_adapter"
  want=$($sc complete --model "$dir/fp32" --device cpu --prompt "int main(void) {" -n 16 --lora "$dir/la" 2>/dev/null)
  got=$($sc complete --model "$dir/fp32" --device cuda --prompt "int main(void) {" -n 16 --lora "$dir/la" 2>"$dir/err")
  base=$($sc complete --model "$dir/fp32" --device cuda --prompt "int main(void) {" -n 16 2>/dev/null)
  [ "$got" = "$want" ] || fail "complete --device cuda --lora '$got' differs from the CPU's '$want'"
  [ "$got" != "$base" ] || fail "complete --device cuda --lora gives the base's text"
  grep -q "LoRA adapters 0.1 (1, FP32)" "$dir/err" || fail "no adapter in the cuda engine's arena: $(cat "$dir/err")"
  for k in a b; do
    $sc complete --model "$dir/fp32" --device cuda --prompt "int main(" -n 10 --lora "$dir/l$k" >"$dir/want_$k" 2>/dev/null
  done
  if ! try_start --model "$dir/fp32" --device cuda --parallel 2 --lora "A=$dir/la" --lora "B=$dir/lb"; then
    fail "serve --device cuda --lora did not start: $(cat "$dir/serve.log")"
  else
    /usr/bin/python3 - "$port" "$dir" "$src/tests" <<'PY' || fail "serve --device cuda --lora (log: $(tail -2 "$dir/serve.log"))"
import sys
port, d = int(sys.argv[1]), sys.argv[2]
sys.path.insert(0, sys.argv[3])
from serve_client import concurrently, request, server_text
def rd(n): return server_text(f"{d}/{n}")
jobs = [("a", [{"id": 0, "scale": 1}]), ("b", [{"id": 1, "scale": 1}]), ("a", [{"id": 0, "scale": 1}]),
        ("b", [{"id": 1, "scale": 1}])]
out = concurrently(lambda i: request(port, "POST", "/completion", {"prompt": "int main(", "n_predict": 10,
                                                                  "temperature": 0, "lora": jobs[i][1]}, timeout=300),
                   len(jobs))
for (k, _), o in zip(jobs, out):
    assert o["content"] == rd("want_" + k), (k, o, rd("want_" + k))
assert rd("want_a") != rd("want_b")
print("serve --device cuda --lora: 4 concurrent requests with adapters A/B = complete --device cuda --lora")
PY
    stop
  fi
fi

[ $fails = 0 ] && echo "infer_cuda_emu: all passed" || echo "infer_cuda_emu: $fails failed"
[ $fails = 0 ]
