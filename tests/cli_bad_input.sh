#!/bin/sh
# cli_bad_input.sh SMALLCODER — every foundation command on bad input: one line naming the file/field on stderr,
# a non-zero exit, no crash, no partial output file. Also checks --help everywhere and the happy path.
set -u
sc=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0

. "$(dirname "$0")/cli_expect.sh"
expect_ok() {
  if ! "$@" >"$dir/out" 2>"$dir/err"; then echo "FAIL: $* exited non-zero:"; cat "$dir/err"; fails=$((fails + 1)); fi
}

for c in "" init info forward; do
  expect_ok $sc $c --help
  grep -q "usage:" "$dir/out" || { echo "FAIL: $sc $c --help prints no usage"; fails=$((fails + 1)); }
done
expect 2 "unknown command 'frobnicate'" $sc frobnicate
expect 2 "unknown option --bogus" $sc init --bogus
expect 2 "missing required option --out" $sc init --preset tiny
expect 1 "unknown preset 'huge'" $sc init --preset huge --out "$dir/m"
[ -e "$dir/m" ] && { echo "FAIL: init with a bad preset left $dir/m behind"; fails=$((fails + 1)); }

expect_ok $sc init --preset tiny --seed 3 --out "$dir/tiny"
expect 1 "already exists" $sc init --preset tiny --out "$dir/tiny"
expect_ok $sc info "$dir/tiny"
grep -q "parameters: 434,816" "$dir/out" || { echo "FAIL: info does not print the tiny parameter count"; cat "$dir/out"; fails=$((fails + 1)); }

echo "1 2 3 4 5" >"$dir/ok.ids"
expect_ok $sc forward --model "$dir/tiny" --ids "$dir/ok.ids"
grep -q "^loss [0-9]" "$dir/out" || { echo "FAIL: forward prints no loss"; fails=$((fails + 1)); }

echo "1 2 x3 4" >"$dir/nonnum.ids"
expect 1 "nonnum.ids: token 2 'x3' is not an integer id" $sc forward --model "$dir/tiny" --ids "$dir/nonnum.ids" --logits "$dir/l.npy"
echo "1 2 512 4" >"$dir/oov.ids"
expect 1 "oov.ids: token 2 has id 512, outside the vocabulary \[0, 512)" $sc forward --model "$dir/tiny" --ids "$dir/oov.ids" --logits "$dir/l.npy"
echo "-1 2" >"$dir/neg.ids"
expect 1 "outside the vocabulary" $sc forward --model "$dir/tiny" --ids "$dir/neg.ids"
echo "7" >"$dir/one.ids"
expect 1 "1 ids; expected between 2" $sc forward --model "$dir/tiny" --ids "$dir/one.ids"
expect 1 "nope.ids: cannot open" $sc forward --model "$dir/tiny" --ids "$dir/nope.ids"
expect 1 "config.json: cannot open" $sc forward --model "$dir/none" --ids "$dir/ok.ids"
[ -e "$dir/l.npy" ] && { echo "FAIL: a failed forward left l.npy behind"; fails=$((fails + 1)); }

# damaged model directories
cp -r "$dir/tiny" "$dir/bad"
echo '{"hidden_size": 128,' >"$dir/bad/config.json"
expect 1 "bad/config.json: not a JSON object" $sc forward --model "$dir/bad" --ids "$dir/ok.ids"
cp "$dir/tiny/config.json" "$dir/bad/config.json"
sed -i 's/"intermediate_size":[^,]*/"intermediate_size": 360/' "$dir/bad/config.json"
expect 1 "has shape \[352, 128\], config says \[360, 128\]" $sc forward --model "$dir/bad" --ids "$dir/ok.ids"
cp "$dir/tiny/config.json" "$dir/bad/config.json"
sed -i 's/"vocab_size":[^,]*/"vocab_size": "many"/' "$dir/bad/config.json"
expect 1 "field vocab_size must be an integer" $sc forward --model "$dir/bad" --ids "$dir/ok.ids"
cp "$dir/tiny/config.json" "$dir/bad/config.json"
head -c 100000 "$dir/tiny/model.safetensors" >"$dir/bad/model.safetensors"
expect 1 "model.safetensors: tensor .* past the end of the data" $sc forward --model "$dir/bad" --ids "$dir/ok.ids"
printf 'garbage!' >"$dir/bad/model.safetensors"
expect 1 "header length" $sc info "$dir/bad" --model "$dir/bad"

# nonsense values are refused at the option parser with one line naming the flag (issue 14, item 6)
expect 2 "option --lr -1 is out of range" $sc train --lr -1
expect 2 "option --top-p 2 is out of range" $sc complete --model "$dir/tiny" --prompt x --top-p 2
expect 2 "option --temperature -1 is out of range" $sc complete --model "$dir/tiny" --prompt x --temperature -1
expect 2 "option --n-predict -1 is out of range" $sc complete --model "$dir/tiny" --prompt x -n -1
expect 2 "option --zstd-level 99 is out of range" $sc tokenize -t "$dir/none.json" --out "$dir/sh" --zstd-level 99 "$dir"
expect 2 "option --std -1 is out of range" $sc init --preset tiny --out "$dir/m" --std -1
expect 2 "option --vocab-size 3 is below 262" $sc init --preset tiny --out "$dir/m" --vocab-size 3
[ -e "$dir/m" ] && { echo "FAIL: a refused init left $dir/m behind"; fails=$((fails + 1)); }
m="--model $dir/tiny" o="--out $dir/never" t="--tokenizer $dir/none.json"
for c in "train" "eval $m --data $dir" "forward $m --ids $dir/ok.ids" "tokenize $t $o $dir" "tokenizer train $o $dir" \
         "tokenizer encode $t $dir/ok.ids" "teacher $m --data $dir $o" "quantize $m $o" "complete $m -p x" \
         "infer-bench $m" "serve $m"; do
  expect 2 "option --threads -3 is out of range" $sc $c --threads -3
done
expect 2 "option --bandwidth -5 is out of range" $sc infer-bench $m --bandwidth -5
expect 2 "option --max-tokens -1 is out of range" $sc eval $m --data "$dir" --max-tokens -1
expect 2 "option --ctx -5 is out of range" $sc serve $m --ctx -5
expect 2 "option --overlap -7 is out of range" $sc teacher $m --data "$dir" $o --overlap -7
# a choice outside its name table is refused by the parser (exit 2, one line naming the choices), and --help lists
# them: the engine options of complete, serve and infer-bench (infer/engine_cli.h) and export's --type
for c in "complete $m -p x" "infer-bench $m" "serve $m"; do
  expect 2 "--precision must be auto, fp16 or int8, got 'bf16'" $sc $c --precision bf16
  expect 2 "--kv must be f16, f32, q8 or q4, got 'q2'" $sc $c --kv q2
  expect_ok $sc ${c%% *} --help
  grep -q -- "--precision S .*: auto, fp16 or int8 (default auto)" "$dir/out" || fail "${c%% *} --help: no --precision choices"
done
expect 2 "--type must be f16 or q8_0, got 'q4_0'" $sc export gguf $m --out "$dir/never" --type q4_0
expect_ok $sc export --help
grep -q -- "--type S .*matrix type: f16 or q8_0 (default f16)" "$dir/out" || fail "export --help: no --type choices"
[ -e "$dir/never" ] && { echo "FAIL: a refused command created $dir/never"; fails=$((fails + 1)); }

[ $fails -eq 0 ] && echo "cli_bad_input: all checks passed" || echo "cli_bad_input: $fails failure(s)"
[ $fails -eq 0 ]
