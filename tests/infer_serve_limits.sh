#!/bin/sh
# infer_serve_limits.sh SMALLCODER SOURCE_DIR — `smallcoder serve` under abuse, over loopback only and bounded in
# count and time (issue 14, items 4 and 10): with `ulimit -n 128` the server takes at most 96 connections; 300 idle
# connections (more than its descriptor limit) must not stop /health from being answered (the 2 s idle timeout
# frees the slots), must not flood the log, and the server must serve normally afterwards. /v1/models must be valid
# JSON for a model directory and an alias holding '"' and '\'. The model is an untrained tiny one (fast).
set -u
sc=$1
src=$2
command -v curl >/dev/null || { echo "curl not installed: skipped"; exit 77; }
dir=$(mktemp -d /tmp/sc_serve_limits.XXXXXX)
pid= flood=
cleanup() {
  [ -n "$flood" ] && kill "$flood" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  [ -n "${KEEP:-}" ] && cp "$dir/flood.log" /tmp/serve-limits.log; rm -rf "$dir"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

mkdir -p "$dir/src"
cp "$src"/infer/serve_request.c "$src"/infer/cmd_serve.c "$dir/src/"
$sc tokenizer train -q --vocab-size 300 --ext .c --out "$dir/tok.json" "$dir/src" >/dev/null || { echo "FAIL: tokenizer"; exit 1; }
m="$dir/model \"quoted\" back\\slash"
$sc init --preset tiny --layers 1 --vocab-size 300 --out "$m" >/dev/null || { echo "FAIL: init"; exit 1; }
cp "$dir/tok.json" "$m/tokenizer.json"

serve_nofile=128 # the server's descriptor limit, so a flood can pass it
. "$(dirname "$0")/serve_start.sh"
code() { curl -s --max-time 10 -o "$dir/body" -w '%{http_code}' "$@"; }
model_id() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"][0]["id"], end="")' "$dir/body"; }

# /v1/models: the directory's name, then an alias, both with '"' and '\'
start --model "$m" --threads 1 --timeout 2
grep -q "96 connections at most (idle timeout 2 s)" "$dir/serve.log" || fail "connection limit not 128 - 32: $(cat "$dir/serve.log")"
[ "$(code $url/v1/models)" = 200 ] || fail "/v1/models"
[ "$(model_id 2>/dev/null)" = "$m" ] || fail "/v1/models is not JSON naming the model: $(cat "$dir/body")"

# the flood: 300 idle connections (no byte sent), more than ulimit -n of the server
/usr/bin/python3 -c '
import socket, sys, time
s = []
for i in range(300):
    try:
        c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        s.append(c)
    except OSError:
        pass
print(len(s), flush=True)
time.sleep(30)
' "$port" >"$dir/flood" &
flood=$!
sleep 1
t0=$(date +%s)
ok=
while [ $(($(date +%s) - t0)) -lt 15 ]; do # retried: at the limit a new connection is closed until one times out
  [ "$(code --max-time 3 $url/health)" = 200 ] && { ok=1; break; }
  sleep 0.5
done
t1=$(date +%s)
[ -n "$ok" ] || fail "/health not answered under a flood of 300 idle connections: $(tail -n 5 "$dir/serve.log")"
[ $((t1 - t0)) -le 15 ] || fail "/health took $((t1 - t0)) s under the flood"
echo "flood: $(cat "$dir/flood") connections opened; /health answered after $((t1 - t0)) s"
kill "$flood" 2>/dev/null
wait "$flood" 2>/dev/null
flood=
[ "$(code $url/health)" = 200 ] || fail "/health after the flood"
[ "$(code $url/completion -d '{"prompt":"int ","n_predict":2}')" = 200 ] || fail "/completion after the flood: $(cat "$dir/body")"
kill -0 "$pid" 2>/dev/null || fail "the server died"
cp "$dir/serve.log" "$dir/flood.log"
lines=$(wc -l <"$dir/serve.log")
[ "$lines" -le 60 ] || fail "the flood wrote $lines log lines: $(sort "$dir/serve.log" | uniq -c | sort -rn | head -n 3)"
stop

start --model "$m" --threads 1 --alias 'tiny "8" \ x'
[ "$(code $url/v1/models)" = 200 ] && [ "$(model_id 2>/dev/null)" = 'tiny "8" \ x' ] || fail "/v1/models alias: $(cat "$dir/body")"
stop

# bad values refused in one line
$sc serve --model "$m" --timeout 0 2>"$dir/err" && fail "--timeout 0 accepted"
grep -q -- "--timeout" "$dir/err" || fail "--timeout 0: $(cat "$dir/err")"
(ulimit -n 128 && exec $sc serve --model "$m" --max-connections 500) 2>"$dir/err" && fail "--max-connections above ulimit -n accepted"
grep -q "ulimit -n 128" "$dir/err" || fail "--max-connections 500: $(cat "$dir/err")"

[ $fails -eq 0 ] && echo "infer_serve_limits: all checks passed"
exit $((fails > 0))
