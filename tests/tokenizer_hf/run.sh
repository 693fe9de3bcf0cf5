#!/bin/sh
# run.sh SMALLCODER — the HF tokenizers compatibility test (hf_compat.js): installs HF tokenizers' Node binding
# from npm into <build>/npm once, then compares ids and round trips. Exit 77 (skipped) when node, npm or the
# package is unavailable; SC_NPM_DIR overrides where the package goes.
set -u
sc=$1
. "$(dirname "$0")/npm_ready.sh"
node "$here/hf_compat.js" "$sc" "$npmdir/node_modules" "$work"
