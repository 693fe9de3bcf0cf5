#!/bin/bash
# tokenize_test.sh SMALLCODER [FIM_CHECK] — `smallcoder tokenize` end to end on a generated corpus: trains a small tokenizer,
# tokenizes with 1 and 3 threads (byte-identical shards), checks the shard stream equals the per-file encodings
# joined by <|endoftext|>, the skip counts (binary, not UTF-8, oversized, duplicate, empty, unreadable, special
# text, hidden dir), the deterministic train/val split, and bad input: empty corpus (no output dir left), an
# output dir that already has shards, a truncated and a bit-flipped shard (shard-info names file and frame).
# With FIM_CHECK (tests/fim_tokenizer_check), also character-level FIM through the trained tokenizer.
set -u
sc=$1
fim_check=${2:-}
dir=$(mktemp -d)
trap 'chmod -R u+rwx "$dir" 2>/dev/null; rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect CODE PATTERN CMD...: exit CODE and a single stderr line matching PATTERN
expect() {
  local code=$1 pattern=$2
  shift 2
  "$@" >"$dir/out" 2>"$dir/err"
  local got=$? lines
  lines=$(wc -l <"$dir/err")
  if [ "$got" -ne "$code" ] || ! grep -q -- "$pattern" "$dir/err" || [ "$lines" -ne 1 ]; then
    fail "$* -> exit $got (want $code), stderr:"; cat "$dir/err"; echo "  (wanted one line matching: $pattern)"
  fi
}

# ---- a corpus with one file of each kind to skip ----
c=$dir/corpus
mkdir -p "$c/pkg/sub" "$c/.git" "$c/other"
for i in $(seq 1 40); do
  printf 'def f%d(x):\n    """doc %d: naïve café — 日本語 🎉"""\n    return x * %d + len("%s")\n\n\nclass C%d:\n\tpass\r\n' \
    "$i" "$i" "$i" "$(head -c $((i * 7)) /dev/zero | tr '\0' 'a')" "$i" >"$c/pkg/m$i.py"
done
for i in $(seq 1 15); do
  printf '#include <stdio.h>\nint g%d(int a) {\n    return a << %d; /* %s */\n}\n' "$i" "$i" "$(seq -s' ' 1 $((i * 20)))" >"$c/pkg/sub/g$i.c"
done
printf 'int main(void) { return 0; }\n' >"$c/main.c"
cp "$c/pkg/m3.py" "$c/other/copy_of_m3.py"  # exact duplicate; other/ is walked first, so pkg/m3.py is the one skipped
printf 'bin\0ary\0' >"$c/pkg/blob.py"                             # NUL bytes
printf 'caf\xe9 latin-1\n' >"$c/pkg/latin1.py"                      # not UTF-8
: >"$c/pkg/empty.py"                                              # empty
head -c 70000 /dev/zero | tr '\0' 'x' >"$c/pkg/huge.py"           # over --max-file-size 64KiB
printf 'x = "<|endoftext|>"\n' >"$c/pkg/special.py"               # would forge a document boundary
printf 'secret\n' >"$c/.git/config.py"                            # hidden directory: not walked
printf 'locked = 1\n' >"$c/pkg/locked.py"
chmod 000 "$c/pkg/locked.py"
if cat "$c/pkg/locked.py" >/dev/null 2>&1; then
  # root reads through chmod 000; the unreadable case is checked below as an unprivileged user instead
  unreadable_expected=0
  rm -f "$c/pkg/locked.py"
else
  unreadable_expected=1
fi

tok=$dir/tokenizer.json
if ! $sc tokenizer train --vocab-size 400 --out "$tok" "$c/pkg" "$c/main.c" >"$dir/out" 2>"$dir/err"; then
  echo "FAIL: tokenizer train:"; cat "$dir/err"; exit 1
fi

run_tokenize() {  # OUT THREADS [extra args]
  local out=$1 threads=$2
  shift 2
  $sc tokenize -t "$tok" --out "$out" --max-file-size 64KiB --frame-tokens 256 --threads "$threads" "$@" "$c" \
    >"$dir/summary" 2>"$dir/err" || { fail "tokenize -j $threads:"; cat "$dir/err"; return 1; }
}
run_tokenize "$dir/a" 1 --val-fraction 0.2
cp "$dir/summary" "$dir/summary_a"
run_tokenize "$dir/b" 3 --val-fraction 0.2
for f in "$dir"/a/*.tok; do
  cmp -s "$f" "$dir/b/$(basename "$f")" || fail "$(basename "$f") differs between 1 and 3 threads"
done
[ "$(ls "$dir/a" | wc -l)" = "$(ls "$dir/b" | wc -l)" ] || fail "different shard lists for 1 and 3 threads"
ls "$dir/a/val-00000.tok" >/dev/null 2>&1 || fail "no val shard with --val-fraction 0.2"

s=$(cat "$dir/summary_a")
grep -q "1 duplicate, 1 binary, 1 not UTF-8, 1 over 64 KiB, 1 empty, $unreadable_expected unreadable, 1 with special-token text" \
  <<<"$s" || { fail "skip counts:"; echo "$s"; }
grep -q "tokenize: 56 documents" <<<"$s" || { fail "document count (want 56: 40 .py + 15 .c + main.c):"; echo "$s"; }
grep -q "bytes per token" <<<"$s" && grep -q "zstd ratio" <<<"$s" || fail "summary lacks bytes per token / compression ratio"

# ---- the stream is exactly the accepted files' encodings in walk order, each followed by <|endoftext|> ----
run_tokenize "$dir/all" 2 --val-fraction 0
ls "$dir/all" | grep -q '^val-' && fail "--val-fraction 0 wrote a val shard"
printf '<|endoftext|>' >"$dir/eot.txt"
eot=$($sc tokenizer encode -t "$tok" "$dir/eot.txt")
expected=""
while IFS= read -r f; do
  case "$f" in */pkg/m3.py|*/blob.py|*/latin1.py|*/empty.py|*/huge.py|*/special.py|*/.git/*|*/locked.py) continue ;; esac
  ids=$($sc tokenizer encode -t "$tok" "$f") || fail "encode $f"
  expected="$expected $ids $eot"
done < <(cd "$dir" && find corpus -type f | LC_ALL=C sort | sed "s|^|$dir/|")
got=$($sc shard-info --ids "$dir/all/train-00000.tok")
[ "$(echo $expected)" = "$(echo $got)" ] || fail "shard ids differ from the per-file encodings joined by <|endoftext|>"
$sc shard-info "$dir/all/train-00000.tok" >"$dir/out" 2>&1 || { fail "shard-info:"; cat "$dir/out"; }
grep -q "56 documents" "$dir/out" || { fail "shard-info document count:"; cat "$dir/out"; }

# ---- a tokenizer without <|endoftext|> (Llama-2, Mistral): documents end with </s>, files holding "</s>" are skipped ----
sed 's/<|endoftext|>/<\/s>/g' "$tok" >"$dir/tok-s.json"
mkdir -p "$dir/two"
printf 'a = 1\n' >"$dir/two/a.py"
printf 'b = "</s>"\n' >"$dir/two/b.py"
if $sc tokenize -t "$dir/tok-s.json" --out "$dir/s" --ext .py --val-fraction 0 "$dir/two" >"$dir/out" 2>&1; then
  printf '</s>' >"$dir/eos.txt"
  s_want="$($sc tokenizer encode -t "$dir/tok-s.json" "$dir/two/a.py") $($sc tokenizer encode -t "$dir/tok-s.json" "$dir/eos.txt")"
  s_got=$($sc shard-info --ids "$dir/s/train-00000.tok")
  [ "$(echo $s_got)" = "$(echo $s_want)" ] || fail "</s> tokenizer: shard ids '$s_got', want '$s_want' (b.py skipped)"
else
  fail "tokenize with a </s> tokenizer:"; cat "$dir/out"
fi

# ---- --shard-tokens: several train shards, consecutive names, together the same stream ----
$sc tokenize -t "$tok" --out "$dir/multi" --max-file-size 64KiB --frame-tokens 256 --val-fraction 0 --shard-tokens 1500 \
  "$c" >/dev/null 2>"$dir/err" || { fail "tokenize --shard-tokens:"; cat "$dir/err"; }
n_multi=$(ls "$dir/multi" | grep -c '^train-')
[ "$n_multi" -ge 3 ] || fail "--shard-tokens 1500 wrote $n_multi train shards, expected several"
[ "$(ls "$dir/multi" | tail -n 1)" = "$(printf 'train-%05d.tok' $((n_multi - 1)))" ] || fail "train shard names are not consecutive"
multi=$(for f in "$dir"/multi/train-*.tok; do $sc shard-info --ids "$f"; done)
[ "$(echo $multi)" = "$(echo $got)" ] || fail "the shards of --shard-tokens 1500 do not concatenate to the single-shard stream"

# ---- character-level FIM through the real tokenizer on these shards (tests/fim_tokenizer_check.c) ----
if [ -n "$fim_check" ]; then
  "$fim_check" "$tok" "$dir/all" 2>"$dir/err" || { fail "character-level FIM check:"; cat "$dir/err"; }
fi

# ---- the split depends on content only: same corpus elsewhere, same shards ----
cp -r "$c" "$dir/moved" 2>/dev/null
rm -f "$dir/moved/pkg/locked.py"; [ "$unreadable_expected" = 1 ] && { printf 'locked = 1\n' >"$dir/moved/pkg/locked.py"; chmod 000 "$dir/moved/pkg/locked.py"; }
$sc tokenize -t "$tok" --out "$dir/m" --max-file-size 64KiB --frame-tokens 256 --val-fraction 0.2 "$dir/moved" >/dev/null 2>&1 \
  || fail "tokenize of the moved corpus"
for f in "$dir"/a/*.tok; do cmp -s "$f" "$dir/m/$(basename "$f")" || fail "$(basename "$f") changed when the corpus moved"; done

# ---- unreadable files and directories are skipped and counted (as root: rerun as nobody, where chmod bites) ----
if [ "$unreadable_expected" = 0 ]; then
  if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
    as_user="setpriv --reuid=65534 --regid=65534 --clear-groups"
  else
    as_user=""
    echo "note: chmod 000 does not block reads here and setpriv is unavailable: unreadable-file check SKIPPED"
  fi
else
  as_user="env"
fi
if [ -n "$as_user" ]; then
  u=$dir/unreadable
  mkdir -p "$u/in/closed"
  chmod 755 "$dir"
  printf 'a = 1\n' >"$u/in/ok.py"
  printf 'b = 2\n' >"$u/in/locked.py"
  printf 'c = 3\n' >"$u/in/closed/inside.py"
  chmod 000 "$u/in/locked.py" "$u/in/closed"
  chmod 777 "$u"
  $as_user $sc tokenize -t "$tok" --out "$u/out" "$u/in" >"$dir/out" 2>"$dir/err" || { fail "tokenize with unreadable files:"; cat "$dir/err"; }
  grep -q "1 documents" "$dir/out" && grep -q " 2 unreadable" "$dir/out" || { fail "unreadable file + directory not counted:"; cat "$dir/out"; }
  chmod 755 "$u/in/closed"; chmod 644 "$u/in/locked.py"
fi

# ---- bad input ----
mkdir -p "$dir/emptycorpus/x"
printf '\0\0' >"$dir/emptycorpus/x/bin.dat"
expect 1 "no documents to write" $sc tokenize -t "$tok" --out "$dir/never" "$dir/emptycorpus"
[ -e "$dir/never" ] && fail "empty corpus left the output directory behind"
expect 1 "no documents to write" $sc tokenize -t "$tok" --out "$dir/never" --ext .rs "$c"
[ -e "$dir/never" ] && fail "empty corpus (--ext) left the output directory behind"
expect 1 "already holds shards" $sc tokenize -t "$tok" --out "$dir/a" "$c"
expect 1 "nonexistent" $sc tokenize -t "$tok" --out "$dir/never" "$dir/nonexistent"
[ -e "$dir/never" ] && fail "missing input left the output directory behind"
expect 1 "$dir/missing.json" $sc tokenize -t "$dir/missing.json" --out "$dir/never" "$c"
expect 2 "val-fraction" $sc tokenize -t "$tok" --out "$dir/never" --val-fraction 2 "$c"

shard=$dir/all/train-00000.tok
size=$(stat -c %s "$shard")
head -c $((size - 7)) "$shard" >"$dir/trunc.tok"
expect 1 "trunc.tok" $sc shard-info "$dir/trunc.tok"
cp "$shard" "$dir/flip.tok"
# flip one byte in the middle of frame 1: its offset and size are in index entry 1 (layout in data/shard.h)
u32() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }
frames=$(u32 "$shard" 20)
[ "$frames" -ge 2 ] || fail "expected several frames with --frame-tokens 256, got $frames"
index=$((size - frames * 32))
off=$(( $(u32 "$shard" $((index + 32))) + $(u32 "$shard" $((index + 48))) / 2 ))
printf '\x5a' | dd of="$dir/flip.tok" bs=1 seek=$off conv=notrunc 2>/dev/null
cmp -s "$shard" "$dir/flip.tok" && printf '\xa5' | dd of="$dir/flip.tok" bs=1 seek=$off conv=notrunc 2>/dev/null
expect 1 "flip.tok: frame 1" $sc shard-info "$dir/flip.tok"
cp "$shard" "$dir/magic.tok"
printf 'X' | dd of="$dir/magic.tok" bs=1 seek=0 conv=notrunc 2>/dev/null
expect 1 "bad magic" $sc shard-info "$dir/magic.tok"

# ---- interrupted: SIGTERM (or Ctrl-C) mid-run removes everything this run wrote (if it finished first, that is fine too) ----
big=$(ls -d /usr/lib/python3.[0-9]* 2>/dev/null | sort -V | tail -n 1)
if [ -d "$big" ]; then
  $sc tokenize -t "$tok" --out "$dir/intr" --ext .py --threads 1 "$big" >"$dir/out" 2>"$dir/err" &
  pid=$!
  sleep 0.3
  kill -TERM $pid 2>/dev/null
  wait $pid
  rc=$?
  if [ $rc -ne 0 ]; then
    # 143 with nothing said: the signal came before the handler was installed (start-up, e.g. smallcoder's one
    # re-exec in host/cpu_tune.c, can take longer than the sleep on a loaded machine) - nothing may be left then either
    [ $rc -eq 143 ] && [ ! -s "$dir/err" ] ||
      grep -q "interrupted" "$dir/err" || { fail "interrupted tokenize: unexpected error (exit $rc):"; cat "$dir/err"; }
    [ -e "$dir/intr" ] && { fail "interrupted tokenize left $dir/intr behind:"; ls -la "$dir/intr"; }
  fi
fi

if [ $fails -ne 0 ]; then echo "tokenize_test: $fails failure(s)"; exit 1; fi
echo "tokenize_test: all checks passed"
