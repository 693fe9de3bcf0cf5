# serve_start.sh — sourced by the server test scripts after they set $sc and $dir: starting and stopping one
# `smallcoder serve` on a free loopback port, which each script used to carry a copy of.
# start ARGS...: runs `serve --port 0 ARGS` in the background (under `ulimit -n $serve_nofile` when that is set),
# waits for its "listening on" line, sets pid, port and url; a server that does not start fails the script.
start() {
  # emptied here, before the fork: the child's own 2> truncates it only when it runs, and until then the wait
  # below would read the previous server's "listening on" line and its port
  : >"$dir/serve.log"
  if [ -n "${serve_nofile:-}" ]; then
    (ulimit -n "$serve_nofile" && exec $sc serve --port 0 "$@") 2>"$dir/serve.log" &
  else
    $sc serve --port 0 "$@" 2>"$dir/serve.log" &
  fi
  pid=$!
  port=
  for i in $(seq 100); do
    port=$(sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$dir/serve.log")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "FAIL: server did not start"; cat "$dir/serve.log"; exit 1; }
  url=http://127.0.0.1:$port
}
stop() { kill "$pid"; wait "$pid"; pid=; }
