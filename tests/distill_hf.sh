#!/bin/sh
# distill_hf.sh SMALLCODER MAKE_SHARDS SOURCE_DIR — distill/teacher_hf.py with a plain-PyTorch teacher
# (tests/reference/llama_ref_teacher.py: float64, no transformers) writes the .kd that `smallcoder teacher` writes
# for the same tiny model and shards (tests/kd_compare.py: header fields but the name, same ids at every position
# up to ties, logits within FP16 rounding, lse), with the zstandard module and with the zstd command; a rerun skips
# the shard; `smallcoder train --teacher-logits` trains on it; a different teacher's .kd is told apart.
# Exit 77 (skipped) without torch/numpy in /usr/bin/python3.
set -u
sc=$1 mk=$2 src=$3
py=/usr/bin/python3
$py -c "import torch, numpy" 2>/dev/null || { echo "SKIP: /usr/bin/python3 has no torch/numpy"; exit 77; }
command -v zstd >/dev/null || { echo "SKIP: no zstd command"; exit 77; }
dir=$(mktemp -d /tmp/sc_distill_hf.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
cd "$dir" || exit 1
"$mk" sh 512 12000 3000 >/dev/null || { echo "FAIL: make shards"; exit 1; }
"$sc" init --preset tiny --out teach --seed 3 --std 0.2 >/dev/null || { echo "FAIL: init"; exit 1; }
"$sc" init --preset tiny --out other --seed 4 --std 0.2 >/dev/null || { echo "FAIL: init"; exit 1; }
hf() { $py "$src/distill/teacher_hf.py" --model-class "$src/tests/reference/llama_ref_teacher.py:load" -q "$@"; }

"$sc" teacher --model teach --data sh --out kdc --context 256 --overlap 64 -q >/dev/null || fail "smallcoder teacher"
if hf --model teach --data sh --out kdp --context 256 --overlap 64 --name pytorch-ref >out 2>err; then
  $py "$src/tests/kd_compare.py" kdc/train-000.kd kdp/train-000.kd || fail "teacher_hf.py output differs"
  grep -q "1 .kd file(s) (0 skipped)" out || { fail "first run: $(cat out)"; }
  cp kdp/train-000.kd first.kd
  hf --model teach --data sh --out kdp --context 256 --overlap 64 --name pytorch-ref >out 2>err || fail "rerun"
  grep -q "0 .kd file(s) (1 skipped)" out || fail "finished shard not skipped: $(cat out)"
  cmp -s first.kd kdp/train-000.kd || fail "skipped shard changed"
  ls kdp | grep -q tmp && fail "temporary file left in kdp/"
  "$sc" train --data sh --preset tiny --seq 64 --steps 6 --grad-accum 2 --eval-every 0 --threads 2 -q \
    --out run --teacher-logits kdp 2>err || { fail "train --teacher-logits refused teacher_hf.py's .kd:"; cat err; }
  grep -q "distilling from" err || fail "train: no distillation line"
else
  fail "teacher_hf.py:"; cat err
fi
# the fallback without the zstandard module: the zstd command (other compressed bytes, same content)
TEACHER_HF_ZSTD=cli hf --model teach --data sh --out kdcli --context 256 --overlap 64 >/dev/null 2>err || {
  fail "teacher_hf.py with the zstd command:"; cat err; }
$py "$src/tests/kd_compare.py" kdc/train-000.kd kdcli/train-000.kd >/dev/null || fail "zstd command: output differs"
# the comparison can fail: another teacher's logits are not "the same"
"$sc" teacher --model other --data sh --out kdo --context 256 --overlap 64 -q >/dev/null || fail "teacher other"
$py "$src/tests/kd_compare.py" kdo/train-000.kd kdp/train-000.kd >/dev/null && fail "kd_compare accepts another teacher"
# bad input: one line, exit 1
hf --model teach --data sh --out kd600 --top-k 600 --context 256 >out 2>err
[ $? -eq 1 ] && grep -q "top-k 600" err || { fail "k > vocab: not refused with one line"; cat err; }
[ -e kd600/train-000.kd ] && fail "k > vocab left a .kd"
[ $fails -eq 0 ] && echo "distill_hf: ok"
exit $((fails > 0))
