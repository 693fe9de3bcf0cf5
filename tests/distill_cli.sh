#!/bin/sh
# distill_cli.sh SMALLCODER MAKE_SHARDS SOURCE_DIR — `smallcoder teacher` writes one .kd per shard at <= 100
# bytes/token (k=32), a second run skips them; `train --teacher-logits` and `--teacher` train with the loss
# falling; bad input gives one clear line and exit 1 with nothing written: k > vocab, a teacher with another
# tokenizer, a .kd of another shard, a truncated .kd.
set -u
sc=$1
mk=$2
src=$3
dir=$(mktemp -d /tmp/sc_distill_cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect_error WHAT NEEDLE CMD...: exit 1 and one stderr line containing NEEDLE
expect_error() {
  what=$1 needle=$2
  shift 2
  "$@" >"$dir/out" 2>"$dir/err"
  rc=$?
  [ $rc -eq 1 ] || fail "$what: exit $rc, expected 1"
  grep -q -- "$needle" "$dir/err" || { fail "$what: error does not mention '$needle'"; cat "$dir/err"; }
  [ "$(grep -c . "$dir/err")" -le 2 ] || { fail "$what: more than one error line"; cat "$dir/err"; }
}
losses() { grep '"type":"train"' "$1" | sed 's/.*"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/'; }

cd "$dir" || exit 1
"$mk" sh 512 40000 6000 >/dev/null && "$mk" other 512 30000 6000 7 >/dev/null || { echo "FAIL: make shards"; exit 1; }
"$sc" init --preset tiny --out teach --seed 3 --std 0.2 >/dev/null || { echo "FAIL: init"; exit 1; }

# 1. teacher: files, bytes/token, resume
if "$sc" teacher --model teach --data sh --out kd --context 256 --overlap 64 -q >out 2>err; then
  [ -f kd/train-000.kd ] || fail "no kd/train-000.kd"
  bpt=$(sed -n 's/.*, \([0-9.]*\) bytes\/token.*/\1/p' out)
  awk -v b="$bpt" 'BEGIN { exit !(b > 0 && b <= 100) }' || fail "bytes/token $bpt not in (0, 100]"
  cp kd/train-000.kd kd.first
  "$sc" teacher --model teach --data sh --out kd --context 256 --overlap 64 -q >out 2>err || fail "second run"
  grep -q "wrote 0 .kd file(s) (1 skipped)" out || { fail "finished shard not skipped"; cat out; }
  cmp -s kd.first kd/train-000.kd || fail "skipped shard changed"
  ls kd | grep -q tmp && fail "temporary files left in kd/"
else
  fail "teacher:"; cat err
fi

# 4. training with the teacher's logits and online: runs, loss falls
common="--data sh --preset tiny --seq 64 --steps 30 --grad-accum 2 --lr 3e-3 --warmup 3 --eval-every 0 --threads 2 -q"
i=0
for mode in "--teacher-logits kd" "--teacher teach --kd-loss reverse"; do
  i=$((i + 1)) name=kd$i
  if "$sc" train $common --out "run-$name" $mode 2>err; then
    grep -q "distilling from" err || fail "$mode: no distillation line"
    first=$(losses "run-$name/metrics.jsonl" | head -3 | awk '{ s += $2 } END { print s / NR }')
    last=$(losses "run-$name/metrics.jsonl" | tail -3 | awk '{ s += $2 } END { print s / NR }')
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.1) }' || fail "$mode: loss did not fall: $first -> $last"
  else
    fail "train $mode:"; cat err
  fi
done

# bad input
expect_error "k > vocab" "--top-k 600" "$sc" teacher --model teach --data sh --out kd600 --top-k 600 -q
[ -e kd600/train-000.kd ] && fail "k > vocab wrote a file"
"$sc" tokenizer train -q --vocab-size 300 --ext .c,.h --out teach/tokenizer.json "$src/distill" 2>err ||
  { fail "tokenizer train"; cat err; }
expect_error "teacher with another tokenizer" "same tokenizer\|share one tokenizer" \
  "$sc" teacher --model teach --data sh --out kdtok -q
expect_error "online teacher with another tokenizer" "share one tokenizer" \
  "$sc" train $common --out run-tok --teacher teach
rm teach/tokenizer.json
mkdir -p kdother && cp kd/train-000.kd kdother/train-000.kd
expect_error ".kd of another shard" "entries in" "$sc" train $common --data other --out run-other --teacher-logits kdother
size=$(wc -c <kd/train-000.kd)
mkdir -p kdtrunc && head -c $((size / 2)) kd/train-000.kd >kdtrunc/train-000.kd
expect_error "truncated .kd" "truncated" "$sc" train $common --out run-trunc --teacher-logits kdtrunc
expect_error "missing .kd" "missing" "$sc" train $common --out run-missing --teacher-logits nowhere
expect_error "--fim-rate with distillation" "fim-rate" "$sc" train $common --out run-fim --teacher-logits kd --fim-rate 0.5
for d in run-tok run-other run-trunc run-missing run-fim; do
  ls "$d" 2>/dev/null | grep -q ckpt && fail "$d: a checkpoint was written on bad input"
done

if [ $fails -ne 0 ]; then echo "distill_cli: $fails failure(s)"; exit 1; fi
echo "distill_cli: all checks passed"
