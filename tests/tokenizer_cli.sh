#!/bin/sh
# tokenizer_cli.sh SMALLCODER — `smallcoder tokenizer train|encode|decode` from the command line: --help, a
# train -> encode -> decode round trip (files and stdin), the special token ids, and bad input: one line on
# stderr naming the problem, a non-zero exit, and no output file written or clobbered.
set -u
sc=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0 passes=0

expect() { # expect CODE PATTERN CMD...: exit CODE and exactly one stderr line matching PATTERN
  code=$1 pattern=$2
  shift 2
  "$@" >"$dir/out" 2>"$dir/err"
  got=$?
  if [ "$got" -ne "$code" ] || ! grep -q -- "$pattern" "$dir/err" || [ "$(wc -l <"$dir/err")" -ne 1 ]; then
    echo "FAIL: $* -> exit $got (want $code), stderr:"; cat "$dir/err"; echo "  (wanted one line matching: $pattern)"
    fails=$((fails + 1))
  else passes=$((passes + 1)); fi
}
ok() { # ok DESCRIPTION CMD...
  what=$1
  shift
  if "$@"; then passes=$((passes + 1)); else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

for sub in train encode decode; do
  "$sc" tokenizer $sub --help >"$dir/out" 2>&1
  ok "tokenizer $sub --help" grep -q "usage: smallcoder tokenizer $sub" "$dir/out"
done
"$sc" tokenizer --help >"$dir/out" 2>&1
ok "tokenizer --help lists the subcommands" grep -q "train|encode|decode" "$dir/out"
"$sc" tokenizer >/dev/null 2>&1
ok "tokenizer without a subcommand exits 2" [ $? -eq 2 ]
expect 2 "unknown subcommand 'frob'" "$sc" tokenizer frob

# a small corpus: code, a nested directory, a binary file and a hidden directory (both skipped)
mkdir -p "$dir/corpus/pkg/sub" "$dir/corpus/.git"
for i in 1 2 3 4 5 6; do
  printf 'def function_%s(value, other):\n    """Docstring %s."""\n    return value * %s + other  # größe\n\n' $i $i $i \
    >"$dir/corpus/pkg/m$i.py"
  printf '#include <stdio.h>\nint f%s(int x) {\n\treturn x + %s;\n}\n' $i $i >"$dir/corpus/pkg/sub/f$i.c"
done
printf 'bin\000ary' >"$dir/corpus/pkg/blob.py"
printf 'secret = 1\n' >"$dir/corpus/.git/hidden.py"
expect_train() { "$sc" tokenizer train --vocab-size 300 -q "$@"; }
ok "train" expect_train --out "$dir/tok.json" "$dir/corpus"
ok "train wrote tok.json" [ -s "$dir/tok.json" ]
ok "no temporary file left" [ "$(ls "$dir" | grep -c tmp)" -eq 0 ]
expect_train --threads 1 --out "$dir/tok1.json" "$dir/corpus"
ok "the result does not depend on the thread count" cmp -s "$dir/tok.json" "$dir/tok1.json"

# round trip through files and stdin, with specials, CRLF, tabs and non-ASCII
printf 'x<|endoftext|><fim_prefix>def f(a):\r\n\treturn a  # 🎉 größe\n\n   \n' >"$dir/text.txt"
"$sc" tokenizer encode -t "$dir/tok.json" "$dir/text.txt" "$dir/corpus/pkg/m1.py" >"$dir/ids" 2>"$dir/err"
ok "encode prints one line per file" [ "$(wc -l <"$dir/ids")" -eq 2 ]
ok "specials are ids 0 and 1" sh -c "head -1 '$dir/ids' | grep -q '^[0-9]* 0 1 '"
head -1 "$dir/ids" >"$dir/ids1"
"$sc" tokenizer decode -t "$dir/tok.json" "$dir/ids1" >"$dir/back"
ok "decode(encode(x)) == x (file)" cmp -s "$dir/back" "$dir/text.txt"
"$sc" tokenizer decode -t "$dir/tok.json" <"$dir/ids1" >"$dir/back2"
ok "decode(encode(x)) == x (stdin)" cmp -s "$dir/back2" "$dir/text.txt"
"$sc" tokenizer encode -t "$dir/tok.json" --stats --threads 2 -q "$dir/text.txt" "$dir/corpus/pkg/m1.py" 2>"$dir/err" >"$dir/out"
ok "--stats reports MB/s" grep -q "MB/s" "$dir/err"
ok "-q prints no ids" [ ! -s "$dir/out" ]

# bad tokenizer.json files
printf '{"model": {"type": "BPE", "vocab": {' >"$dir/bad.json"
expect 1 "bad.json: not valid JSON" "$sc" tokenizer encode -t "$dir/bad.json" "$dir/text.txt"
printf '{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}' >"$dir/uni.json"
expect 1 "model type 'Unigram' is not supported" "$sc" tokenizer encode -t "$dir/uni.json" "$dir/text.txt"
printf '{"model": {"type": "BPE", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "ByteLevel"}}' >"$dir/nomerge.json"
expect 1 "model.merges: missing" "$sc" tokenizer decode -t "$dir/nomerge.json" "$dir/ids1"
expect 1 "missing.json: cannot open" "$sc" tokenizer encode -t "$dir/missing.json" "$dir/text.txt"
expect 1 "nofile.txt: cannot open" "$sc" tokenizer encode -t "$dir/tok.json" "$dir/nofile.txt"

# bad ids
echo "1 2 300" >"$dir/ids_big"
expect 1 "has id 300, outside the vocabulary \[0, 300)" "$sc" tokenizer decode -t "$dir/tok.json" "$dir/ids_big"
echo "1 two 3" >"$dir/ids_word"
expect 1 "'two' is not an integer id" "$sc" tokenizer decode -t "$dir/tok.json" "$dir/ids_word"
echo "-4" >"$dir/ids_neg"
expect 1 "has id -4" "$sc" tokenizer decode -t "$dir/tok.json" "$dir/ids_neg"

# training that cannot succeed leaves the previous file alone and writes nothing new
echo old >"$dir/keep.json"
mkdir -p "$dir/empty" "$dir/binonly"
printf '\000\001\002' >"$dir/binonly/x.py"
expect 1 "no files with extensions" "$sc" tokenizer train -q --out "$dir/keep.json" "$dir/empty"
expect 1 "no usable text" "$sc" tokenizer train -q --out "$dir/keep.json" "$dir/binonly"
expect 1 "vocab size 100" "$sc" tokenizer train -q --vocab-size 100 --out "$dir/keep.json" "$dir/corpus"
expect 1 "nope: No such file" "$sc" tokenizer train -q --out "$dir/keep.json" "$dir/nope"
ok "a failed train keeps the old file" [ "$(cat "$dir/keep.json")" = old ]
expect 1 "x.json" "$sc" tokenizer train -q --vocab-size 300 --out "$dir/no/such/dir/x.json" "$dir/corpus"
expect 2 "missing" "$sc" tokenizer train -q "$dir/corpus"
ok "nothing half-written" [ "$(ls "$dir" | grep -c tmp)" -eq 0 ]

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
