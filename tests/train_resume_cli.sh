#!/bin/sh
# train_resume_cli.sh SMALLCODER MAKE_SHARDS — resuming never misleads (issue 14, items 1, 2, 6, 7, 8): going on
# from an older checkpoint of a run is refused with one line and leaves the newer ones untouched (branching off
# with --out works), a directory whose name disagrees with its trainer_state.json is refused, every number read
# from trainer_state.json is bounded and the error names the file and the field, options restored from the file
# are reported as its fields, --steps below the saved step is refused, a finished run resumed twice adds no
# duplicate eval line, and a fresh run whose first save fails leaves no run directory behind.
set -u
sc=$1
mk=$2
dir=$(mktemp -d /tmp/sc_train_resume.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0

. "$(dirname "$0")/cli_expect.sh"
# state_edit SED_EXPR CKPT: a copy of CKPT under $dir/e/ckpt-N with trainer_state.json edited; prints its path
state_edit() {
  rm -rf "$dir/e" && mkdir "$dir/e" && cp -r "$2" "$dir/e/" || return 1
  sed -i "$1" "$dir/e/$(basename "$2")/trainer_state.json"
  echo "$dir/e/$(basename "$2")"
}
# refused_edit SED_EXPR PATTERN [ARGS...]: `train --resume` of a copy of a0/ckpt-6 whose trainer_state.json SED_EXPR
# edits (ARGS added) is refused with one line matching PATTERN; the copy stays in $e
refused_edit() {
  e=$(state_edit "$1" "$dir/a0/ckpt-6") || { fail "cannot edit a copy of ckpt-6 with $1"; return; }
  _re_pattern=$2
  shift 2
  expect 1 "$_re_pattern" $sc train --resume "$e" "$@"
}

data=$dir/data
"$mk" "$data" 128 20000 2000 || { echo "FAIL: cannot make shards"; exit 1; }
common="--data $data --preset tiny --seq 32 --grad-accum 1 --lr 3e-3 --eval-tokens 128 --threads 1 -q"
$sc train $common --steps 6 --save-every 2 --eval-every 3 --keep 0 --out "$dir/a" 2>"$dir/err" || { fail "run a"; cat "$dir/err"; }
cp -r "$dir/a" "$dir/a0"

# ---- item 1: resuming from an older checkpoint of the same run is refused; the newer ones stay as they were ----
expect 1 "ckpt-2 is older than .*ckpt-6: .* refused" $sc train --resume "$dir/a/ckpt-2" --lr 0.0005
for s in 4 6; do
  cmp -s "$dir/a/ckpt-$s/model.safetensors" "$dir/a0/ckpt-$s/model.safetensors" &&
    cmp -s "$dir/a/ckpt-$s/trainer_state.json" "$dir/a0/ckpt-$s/trainer_state.json" || fail "ckpt-$s changed by a refused resume"
done
cmp -s "$dir/a/metrics.jsonl" "$dir/a0/metrics.jsonl" || fail "metrics.jsonl changed by a refused resume"
# branching off into another directory works and its names match their content
$sc train --resume "$dir/a/ckpt-2" --lr 0.0005 --out "$dir/b" 2>"$dir/err" || { fail "branch off with --out"; cat "$dir/err"; }
grep -q '"lr":[^,]*0.0005' "$dir/b/ckpt-6/trainer_state.json" || fail "b/ckpt-6 does not hold the new run's lr"
grep -q '"step":[^,]*6,' "$dir/b/ckpt-6/trainer_state.json" || fail "b/ckpt-6 does not hold step 6"
cmp -s "$dir/a/ckpt-6/model.safetensors" "$dir/b/ckpt-6/model.safetensors" && fail "b/ckpt-6 holds the old weights"
# ... but not into a third run's directory that has checkpoints of its own
expect 1 "already holds checkpoints" $sc train --resume "$dir/a/ckpt-2" --out "$dir/b"
# a directory whose name disagrees with its content, or that is not named ckpt-N at all, is refused
mkdir "$dir/r" && cp -r "$dir/a0/ckpt-2" "$dir/r/ckpt-3"
expect 1 "\"step\" 2 disagrees with the directory's name ckpt-3" $sc train --resume "$dir/r"
cp -r "$dir/a0/ckpt-6" "$dir/r/final"
expect 1 "final: not named ckpt-<step>" $sc train --resume "$dir/r/final"
[ -e "$dir/r/ckpt-8" ] || [ -e "$dir/ckpt-8" ] && fail "a refused resume wrote a checkpoint"

# ---- item 2: numbers from trainer_state.json are bounded, the error names the file and the field ----
refused_edit 's/"step":[^,]*,/"step": 1e20,/' "e/ckpt-6/trainer_state.json: \"step\" 1e+20 is out of range \[0, 2^40\]"
ls -d "$dir"/e/ckpt-* | grep -qv 'ckpt-6$' && fail "a bad step wrote a checkpoint"
refused_edit 's/"step":[^,]*,/"step": -3,/' "trainer_state.json: \"step\" -3 is out of range"
refused_edit 's/"step":[^,]*,/"step": 6.5,/' "trainer_state.json: \"step\" 6.5 is not an integer"
refused_edit 's/"tokens":[^,]*,/"tokens": 1e300,/' "trainer_state.json: \"tokens\" 1.0000000000000001e+300 is out of range \[0, 2^53\]"
refused_edit 's/"adamw_updates":[^,]*,/"adamw_updates": 7,/' "trainer_state.json: \"adamw_updates\" 7 is out of range \[0, 6\]"
refused_edit 's/"total_steps":[^,]*,/"total_steps": 1e20,/' "trainer_state.json: \"lr_schedule.total_steps\" 1e+20 is out of range"
refused_edit 's/"scale":[^,]*,/"scale": 0,/' "trainer_state.json: \"loss_scale.scale\" 0 is out of range"
refused_edit 's/"warmup":[^,]*,/"warmup": 1e20,/g' "trainer_state.json: \"lr_schedule.warmup\" 1e+20 is out of range"
# ---- item 7: options restored from the file are its fields, not flags the user typed ----
refused_edit '/"options"/,$ s/"warmup":[^,]*,/"warmup": 1e20,/' "trainer_state.json: options.warmup 1e+20 is out of range"
refused_edit '/"options"/,$ s/"steps":[^,]*,/"steps": 1e20,/' "trainer_state.json: options.steps 1e+20 is out of range \[0, 1099511627776\]"
refused_edit '/"options"/,$ s/"min-lr":[^,]*,/"min-lr": 5,/' "e/ckpt-6/trainer_state.json: options.min-lr 5 is above options.lr 0.003$"
expect 1 "e/ckpt-6/trainer_state.json: options.min-lr 5 is above --lr 0.1$" $sc train --resume "$e" --lr 0.1
refused_edit '/"options"/,$ { /"data":/d }' "trainer_state.json: \"options.data\" is missing: give --data"
refused_edit 's/"position":[^,]*,/"position": "x",/' "e/ckpt-6/trainer_state.json: data state: \"position\" is not a number" --out "$dir/y"
# ---- item 6: --steps below the saved step ----
expect 1 "\-\-steps gives 3 steps, below step 6" $sc train --resume "$dir/a" --steps 3
cmp -s "$dir/a/metrics.jsonl" "$dir/a0/metrics.jsonl" || fail "metrics.jsonl changed by refused resumes"

# ---- item 8: a finished run resumed twice adds no eval line and leaves its checkpoint as it was ----
evals=$(grep -c '"type":"eval"' "$dir/a/metrics.jsonl")
for i in 1 2; do $sc train --resume "$dir/a" 2>"$dir/err" || { fail "resume of a finished run"; cat "$dir/err"; }; done
[ "$(grep -c '"type":"eval"' "$dir/a/metrics.jsonl")" -eq "$evals" ] || fail "resuming a finished run added eval lines"
cmp -s "$dir/a/ckpt-6/model.safetensors" "$dir/a0/ckpt-6/model.safetensors" || fail "a finished run's checkpoint was rewritten"
# first_save_fails WHAT OUT ARGS...: `train ARGS --out OUT` under a 600-block file size limit exits 1 "saving
# checkpoint" and leaves no OUT
first_save_fails() {
  _fs_what=$1 _fs_out=$2
  shift 2
  (ulimit -f 600; trap '' XFSZ; exec $sc train "$@" --out "$_fs_out") >"$dir/out" 2>"$dir/err"
  rc=$?
  [ $rc -eq 1 ] && grep -q "saving checkpoint" "$dir/err" || { fail "$_fs_what: exit $rc"; cat "$dir/err"; }
  [ -e "$_fs_out" ] && { fail "$_fs_what left $(ls "$_fs_out")"; }
}
# a fresh run whose first save fails (file size limit: EFBIG) leaves no run directory and no metrics.jsonl
first_save_fails "failed first save" "$dir/full" $common --steps 2
first_save_fails "failed first save of a branch" "$dir/fullb" --resume "$dir/a0/ckpt-2"

if [ $fails -ne 0 ]; then echo "train_resume_cli: $fails failure(s)"; exit 1; fi
echo "train_resume_cli: all checks passed"
