#!/bin/sh
# run.sh SMALLCODER — the HF tokenizers compatibility test (hf_compat.js): installs HF tokenizers' Node binding
# from npm into <build>/npm once, then compares ids and round trips. Exit 77 (skipped) when node, npm or the
# package is unavailable; SC_NPM_DIR overrides where the package goes.
set -u
sc=$1
here=$(cd "$(dirname "$0")" && pwd)
npmdir=${SC_NPM_DIR:-$(cd "$(dirname "$sc")" && pwd)/npm}
if ! why=$("$here/install.sh" "$npmdir"); then
  echo "SKIP: HF tokenizers (npm package) unavailable: $why"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node "$here/hf_compat.js" "$sc" "$npmdir/node_modules" "$work"
