#!/bin/sh
# infer_model.sh SMALLCODER SOURCE_DIR OUT — a small real model for the inference tests: a tokenizer (with the
# FIM tokens) and shards from this repository's C sources, then 120 steps of `train` on the tiny preset with FIM.
# OUT gets tokenizer.json, shards/ and model/ (a complete HF model directory).
set -eu
sc=$1 src=$2 out=$3
corpus="$src/host $src/data $src/train"
$sc tokenizer train -q --vocab-size 1024 --ext .c,.h --out "$out/tokenizer.json" $corpus
$sc tokenize -t "$out/tokenizer.json" --out "$out/shards" --ext .c,.h --val-fraction 0.1 --frame-tokens 4096 \
  $corpus >/dev/null
cp "$out/tokenizer.json" "$out/shards/"
$sc train --data "$out/shards" --preset tiny --seq 128 --grad-accum 4 --lr 5e-3 --warmup 3 --steps 120 \
  --save-every 120 --threads 2 -q --out "$out/run" 2>"$out/train.log"
ln -s run/ckpt-120 "$out/model"
