# serve_start.sh — sourced by the server test scripts after they set $sc and $dir: starting and stopping one
# `smallcoder serve` on a free loopback port, which each script used to carry a copy of.
# try_start ARGS...: runs `serve --port 0 ARGS` in the background (under `ulimit -n $serve_nofile` when that is
# set), waits up to 30 s for its "listening on" line and sets pid, port and url; returns 1 when the server does
# not start (it exited, or did not listen in time: then it is killed), its stderr left in $dir/serve.log.
# start ARGS...: try_start, and a server that does not start fails the script.
# stop: stops the server started last.
# serve_cleanup: the EXIT trap of a server test (trap serve_cleanup EXIT): kills a server still running, waits for
# the script's children and removes $dir.
pid=
serve_cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
try_start() {
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
  # 30 s: the CUDA emulator and the open-model shapes load slowly; a server that exits ends the wait at once
  for i in $(seq 300); do
    port=$(sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$dir/serve.log")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
    return 1
  fi
  url=http://127.0.0.1:$port
}
start() { try_start "$@" || { echo "FAIL: server did not start"; cat "$dir/serve.log"; exit 1; }; }
stop() { kill "$pid"; wait "$pid"; pid=; }
