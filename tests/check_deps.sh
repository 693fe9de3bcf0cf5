#!/bin/sh
# check_deps.sh SRC — scripts/check-deps passes on the tree and fails, naming file, line and edge, on each bad
# include planted in a copy of it: a cycle (train -> distill), host -> a stage, kernels -> host, a stage skipping
# host to reach the kernels, stage -> stage, and an include without a folder.
set -u
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$src/scripts/check-deps" "$src" || fail "the tree itself has edges against the layers"

cp "$src"/smallcoder.c "$src"/commands.h "$tmp"/
for d in kernels host model data train distill infer; do cp -R "$src/$d" "$tmp/$d"; done
mkdir -p "$tmp/scripts" && cp "$src/scripts/check-deps" "$tmp/scripts/"
"$tmp/scripts/check-deps" "$tmp" || fail "the copy has edges against the layers"

plant() { # FILE INCLUDE EXPECTED-EDGE
    cp "$tmp/$1" "$tmp/$1.orig"
    printf '#include "%s"\n' "$2" >>"$tmp/$1"
    out=$("$tmp/scripts/check-deps" "$tmp" 2>&1) && fail "$1 including $2 passed"
    echo "$out" | grep -q "^check-deps: $1:[0-9]*: #include \"$2\" .*$3" || fail "$1 -> $2: message was: $out"
    mv "$tmp/$1.orig" "$tmp/$1"
    echo "ok: $1 -> $2 refused"
}
plant train/trainer.c distill/kd_train.h "edge train -> distill"
plant host/model.c infer/generate.h "edge host -> infer"
plant host/cpu/rope.c train/batch.h "edge host -> train"
plant kernels/rope.cu host/half.h "edge kernels -> host"
plant infer/sampler.c kernels/kernels.h "edge infer -> kernels"
plant data/fim.c train/batch.h "edge data -> train"
plant infer/generate.h model/npy.h "edge infer -> model"
plant host/model.c model.h "names no folder"
"$tmp/scripts/check-deps" "$tmp" || fail "the restored copy fails"
echo "check_deps: ok"
