#!/bin/sh
# train_kill9.sh SMALLCODER MAKE_SHARDS KILLS [SEED] — SIGKILL a tiny training run KILLS times at random moments
# (saves slowed down so that many kills land inside a checkpoint save), resume after each kill (or start again
# when no checkpoint exists yet), let the last run finish, and compare with an uninterrupted run: the train and
# eval records of metrics.jsonl (timings aside) and the final weights and AdamW moments must be bit-identical,
# and no temporary directory may be left. The kill times come from SEED (printed, to replay a failure).
set -u
sc=$1
mk=$2
kills=$3
seed=${4:-$$}
dir=$(mktemp -d /tmp/sc_train_kill9.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL (seed $seed): $*"; fails=$((fails + 1)); }
# the records that must match: type, step, loss / val_loss, lr, grad norm, tokens, loss scale (no timings)
records() { sed 's/,"tok_s":[^,]*//; s/,"elapsed_s":[^}]*//' "$1"; }

"$mk" "$dir/data" 128 30000 3000 || { echo "FAIL: cannot make shards"; exit 1; }
run="--data $dir/data --preset tiny --seq 32 --grad-accum 2 --lr 3e-3 --steps 40 --save-every 4 --eval-every 6
     --eval-tokens 256 --keep 2 --threads 1 -q"
t0=$(date +%s%N) # the reference saves as slowly as the killed runs (sleeps only: the same bits), so its time is theirs
SMALLCODER_TEST_SLOW_SAVE=40 $sc train $run --out "$dir/ref" 2>"$dir/err" || { fail "reference run"; cat "$dir/err"; exit 1; }
ref_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

# kill delays in ms, uniform in [20, 600) on an idle machine; scaled by how long the uninterrupted run took beyond
# its idle ~1 s (slowed saves included), so that under load the kills still land past start-up and inside saves (not only before step 1)
scale=$(( ref_ms > 1000 ? ref_ms : 1000 ))
awk -v n="$kills" -v s="$seed" -v f="$scale" 'BEGIN { srand(s); for (i = 0; i < n; i++) printf "%d\n", (20 + int(rand() * 580)) * f / 1000 }' >"$dir/delays"
in_save=0 k=0
while read -r ms; do
  k=$((k + 1))
  if ls -d "$dir"/run/ckpt-* >/dev/null 2>&1; then set -- train --resume "$dir/run" -q --threads 1
  else set -- train $run --out "$dir/run"; fi
  SMALLCODER_TEST_SLOW_SAVE=40 $sc "$@" >/dev/null 2>>"$dir/log" &
  pid=$!
  sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  ls -d "$dir"/run/.tmp-ckpt-* >/dev/null 2>&1 && saving=1 || saving=0
  if kill -9 $pid 2>/dev/null; then
    in_save=$((in_save + saving))
  fi
  wait $pid 2>/dev/null
done <"$dir/delays"
before=$(ls -d "$dir"/run/ckpt-* 2>/dev/null | sed 's/.*ckpt-//' | sort -n | tail -1)
if ls -d "$dir"/run/ckpt-* >/dev/null 2>&1; then $sc train --resume "$dir/run" -q --threads 1 2>>"$dir/log"
else $sc train $run --out "$dir/run" 2>>"$dir/log"; fi || { fail "final run"; tail -5 "$dir/log"; }
echo "train_kill9: $kills SIGKILLs (seed $seed), $in_save inside a checkpoint save; newest checkpoint before the last run: ckpt-${before:-none}; the uninterrupted run took ${ref_ms} ms"

records "$dir/ref/metrics.jsonl" >"$dir/a"
records "$dir/run/metrics.jsonl" >"$dir/b"
[ "$(grep -c '"type":"train"' "$dir/a")" -eq 40 ] || fail "the reference run has no 40 train records"
cmp -s "$dir/a" "$dir/b" || { fail "metrics differ after the kills"; diff "$dir/a" "$dir/b" | head -10; }
for f in model.safetensors optimizer.safetensors trainer_state.json; do
  cmp -s "$dir/ref/ckpt-40/$f" "$dir/run/ckpt-40/$f" || fail "ckpt-40/$f differs from the uninterrupted run"
done
[ "$(ls -d "$dir"/run/ckpt-* | wc -l)" -eq 2 ] || fail "--keep 2 not honoured: $(ls "$dir/run")"
ls -a "$dir/run" | grep -q '^\.tmp-\|^\.trash-\|\.tmp\.' && fail "temporary files left: $(ls -a "$dir/run")"
[ "$kills" -lt 20 ] || [ "$in_save" -ge 1 ] || fail "no kill landed inside a checkpoint save"
[ "$kills" -lt 20 ] || { [ -n "$before" ] && [ "$before" -gt 0 ]; } || fail "the killed runs never reached a checkpoint past step 0"

if [ $fails -ne 0 ]; then echo "train_kill9: $fails failure(s)"; exit 1; fi
echo "train_kill9: all checks passed"
