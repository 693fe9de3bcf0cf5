#!/bin/sh
# install.sh DIR — puts HF tokenizers' Node binding (npm package `tokenizers`, prebuilt native module inside the
# package) into DIR/node_modules unless it is already there and loads. Exit 0 = ready, 1 = not available
# (the reason on stdout). Used by the HF compatibility test and bench/tokenizer-bench.
set -u
dir=$1
version=0.23.2
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node/npm not installed (scripts/setup test installs them)"
  exit 1
fi
loads() { node -e "require('$dir/node_modules/tokenizers')" >/dev/null 2>&1; }
mkdir -p "$dir"
# one check-and-install at a time: the tests that need the binding run in parallel (ctest -j2), and a second
# `npm install` into the same folder while the first one's native module was half written crashed a test (a
# segmentation fault in CI, session 6); the lock goes with this process
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dir/.install.lock"
  flock 9
fi
if [ -f "$dir/node_modules/tokenizers/package.json" ] &&
   grep -q "\"version\": \"$version\"" "$dir/node_modules/tokenizers/package.json" && loads; then
  exit 0
fi
if ! timeout 600 npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error "tokenizers@$version" \
     >"$dir/npm-install.log" 2>&1; then
  echo "npm install tokenizers@$version failed (see $dir/npm-install.log):"
  tail -3 "$dir/npm-install.log"
  exit 1
fi
if ! loads; then
  echo "tokenizers@$version installed but its native module does not load on this platform"
  exit 1
fi
exit 0
