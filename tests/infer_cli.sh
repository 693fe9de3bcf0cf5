#!/bin/sh
# infer_cli.sh SMALLCODER SOURCE_DIR — quantize -> eval -> complete on a tiny model trained here: the INT8 files
# (I8 + F16 .scale tensors, quantization_config, tokenizer copied), the perplexity delta FP32 vs INT8 (<= 0.5%
# relative), greedy agreement FP32 vs INT8, FIM from --prefix/--suffix and --file --cursor, --stream equal to the
# plain output, stop strings, seeded sampling reproducible, and bad input (one clear line, exit non-zero).
set -u
sc=$1
src=$2
dir=$(mktemp -d /tmp/sc_infer_cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
"$(dirname "$0")/infer_model.sh" "$sc" "$src" "$dir" || { echo "FAIL: could not train the test model"; exit 1; }
m=$dir/model

for g in 0 64; do
  $sc quantize --model "$m" --out "$dir/int8-$g" --group-size $g 2>"$dir/err" || { fail "quantize g$g"; cat "$dir/err"; }
done
q=$dir/int8-0
grep -q '"quant_method":[[:space:]]*"smallcoder-int8"' "$q/config.json" || fail "no quantization_config"
cmp -s "$m/tokenizer.json" "$q/tokenizer.json" || fail "tokenizer.json not copied"
/usr/bin/python3 - "$q/model.safetensors" <<'PY' || fail "INT8 safetensors layout"
import json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
w = h["model.layers.0.self_attn.q_proj.weight"]; s = h["model.layers.0.self_attn.q_proj.weight.scale"]
assert w["dtype"] == "I8" and s["dtype"] == "F16" and s["shape"] == [w["shape"][0], 1], (w, s)
assert h["model.embed_tokens.weight"]["dtype"] == "I8" and h["model.norm.weight"]["dtype"] == "F32"
PY
ls -l "$m/model.safetensors" "$q/model.safetensors" | awk '{print "size", $5, $NF}'
$sc quantize --model "$m" --out "$dir/bad" --group-size 48 2>"$dir/err" && fail "group size 48 accepted"
$sc quantize --model "$q" --out "$dir/bad" 2>"$dir/err" && fail "quantizing an INT8 dir accepted"
grep -q "already quantized" "$dir/err" || fail "no clear message for an INT8 input: $(cat "$dir/err")"

# perplexity delta on the held-out split
ev() { $sc eval --model "$1" --data "$dir/shards" --seq 128 --json 2>/dev/null | sed 's/.*"perplexity":\([0-9.e+-]*\).*/\1/'; }
p32=$(ev "$m"); p8=$(ev "$q"); p64=$(ev "$dir/int8-64")
echo "perplexity fp32 $p32, int8 per-row $p8, int8 group 64 $p64"
awk -v a="$p32" -v b="$p8" 'BEGIN { d = (b - a) / a; printf "relative delta per-row %.4f%%\n", 100 * d; exit !(d < 0.005 && d > -0.005) }' ||
  fail "INT8 perplexity delta above 0.5%"

# greedy agreement FP32 vs INT8 (characters of common prefix over 6 prompts)
tot=0; same=0
for p in "int main(" "static int " "#include <" "for (int i = 0; " "return sc_fail(" "typedef struct {"; do
  a=$($sc complete --model "$m" --prompt "$p" -n 24 --kv f32 2>/dev/null)
  b=$($sc complete --model "$q" --prompt "$p" -n 24 2>/dev/null)
  n=$(/usr/bin/python3 -c 'import os,sys; a,b=sys.argv[1],sys.argv[2]; print(len(os.path.commonprefix([a,b])), max(len(a),1))' "$a" "$b")
  same=$((same + ${n% *})); tot=$((tot + ${n#* }))
done
echo "greedy agreement INT8 vs FP32: $same of $tot characters before the first difference"
[ $((same * 2)) -ge $tot ] || fail "INT8 greedy output diverges from FP32 early ($same/$tot)"

# FIM: --prefix/--suffix and --file --cursor build the same prompt
printf 'int add(int a, int b) {\n    return a;\n}\n' >"$dir/f.c"
a=$($sc complete --model "$q" --prefix 'int add(int a, int b) {
    return ' --suffix 'a;
}
' -n 16 2>"$dir/err") || { fail "complete FIM"; cat "$dir/err"; }
grep -q "(FIM)" "$dir/err" || fail "FIM not reported"
grep -q "prefill [0-9.]* tok/s.*decode [0-9.]* tok/s.*peak memory [0-9.]* MiB" "$dir/err" || fail "no speed/memory line: $(cat "$dir/err")"
b=$($sc complete --model "$q" --file "$dir/f.c" --cursor 2:12 -n 16 2>/dev/null)
[ "$a" = "$b" ] || fail "--file --cursor differs from --prefix/--suffix: '$a' vs '$b'"
c=$($sc complete --model "$q" --file "$dir/f.c" --cursor 2:12 -n 16 --stream 2>/dev/null)
[ "$b" = "$c" ] || fail "--stream output differs: '$b' vs '$c'"
# sampling: a seed reproduces, stop strings cut
s1=$($sc complete --model "$m" --prompt "int " -n 20 --temperature 0.9 --seed 5 2>/dev/null)
s2=$($sc complete --model "$m" --prompt "int " -n 20 --temperature 0.9 --seed 5 2>/dev/null)
[ "$s1" = "$s2" ] || fail "same seed, different samples"
s3=$($sc complete --model "$m" --prompt "int main(" -n 64 --stop '\n' 2>"$dir/err")
[ "$(printf '%s' "$s3" | wc -l)" -eq 0 ] || fail "stop string \\n not honoured: '$s3'"
# bad input
$sc complete --model "$dir/nope" --prompt x 2>"$dir/err" && fail "missing model accepted"
[ "$(wc -l <"$dir/err")" -eq 1 ] || fail "missing model: not one line: $(cat "$dir/err")"
$sc complete --model "$q" --file "$dir/f.c" --cursor 9:1 2>"$dir/err" && fail "cursor past the end accepted"
grep -q "only 4 lines" "$dir/err" || fail "cursor message: $(cat "$dir/err")"
$sc complete --model "$q" --prompt x --prefix y 2>/dev/null; [ $? -eq 2 ] || fail "--prompt with --prefix not a usage error"
for c in "complete --prompt x" infer-bench; do  # --kv is checked the same way by every inference command
  $sc $c --model "$q" --kv f8 2>"$dir/err" >/dev/null; [ $? -eq 2 ] || fail "$c --kv f8 not a usage error"
  c=${c%% *}
  grep -q "smallcoder $c: --kv must be f16, f32, q8 or q4, got 'f8'" "$dir/err" || fail "$c --kv message: $(cat "$dir/err")"
done

if [ $fails -ne 0 ]; then echo "infer_cli: $fails failure(s)"; exit 1; fi
echo "infer_cli: all checks passed"
