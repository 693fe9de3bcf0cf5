# cli_expect.sh — sourced by the CLI test scripts after they set $dir (their scratch directory) and fails=0:
# the checks every one of them made with its own copy.
# fail MESSAGE: count a failure and say it.
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect CODE PATTERN CMD...: CMD exits CODE with exactly one line on stderr, matching PATTERN (our error style).
expect() { _expect 1 "$@"; }
# expect_any CODE PATTERN CMD...: CMD exits CODE with a line on stderr matching PATTERN (others may come with it).
expect_any() { _expect 0 "$@"; }
_expect() {
  _one=$1 code=$2 pattern=$3
  shift 3
  "$@" >"$dir/out" 2>"$dir/err"
  got=$?
  if [ "$got" -ne "$code" ] || ! grep -q -- "$pattern" "$dir/err" || { [ "$_one" = 1 ] && [ "$(wc -l <"$dir/err")" -ne 1 ]; }; then
    echo "FAIL: $* -> exit $got (want $code), stderr:"; cat "$dir/err"
    if [ "$_one" = 1 ]; then echo "  (wanted one line matching: $pattern)"; else echo "  (wanted a line matching: $pattern)"; fi
    fails=$((fails + 1))
  fi
}
