# open_models_lib.sh — sourced by the open-model test scripts (open_models_cli.sh, open_models_published.sh,
# gpu/open_models_cuda_emu.sh) before they make $dir: the start each of them carried a copy of. Without
# python3-numpy (tests/reference/open_models.py generates the models with it) the test is skipped (exit 77).
# fail MESSAGE: count a failure in $fails and say it.
# run LABEL CMD...: runs CMD, its stdout in $dir/out and its stderr in $dir/err; a failure is counted with the last
# three lines of its stderr, and run returns 1.
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "needs python3-numpy: skipped"; exit 77; }
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() {
  label=$1; shift
  if "$@" >"$dir/out" 2>"$dir/err"; then return 0; fi
  fail "$label: $(tail -n 3 "$dir/err")"; return 1
}
