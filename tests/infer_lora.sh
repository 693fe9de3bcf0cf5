#!/bin/sh
# infer_lora.sh SMALLCODER LORA_TEST_ADAPTER SOURCE_DIR — LoRA adapters served unmerged through the commands, on a
# random tiny model with random PEFT adapters (tests/lora_test_adapter.c), seconds:
#   complete: --lora A changes the greedy text, B = 0 and --lora-scaled A:0 give the base's, adapters given twice
#   or as a comma list agree; --lookup and --draft with --lora give --lora's text (speculation on the adapted
#   target); an adapter for another base (shape, base name) and bad --lora-scaled values are refused with one line;
#   an INT8 copy made under another name takes the adapters of the model it was quantized from;
#   serve --lora A=.. --lora B=..: GET /lora-adapters, concurrent requests on 2 slots choosing different adapters
#   with llama.cpp's "lora" field each get complete --lora's text (FP32 and INT8 bases, with --lookup too), the
#   prompt cache is not reused across adapter sets (tokens_cached), POST /lora-adapters sets the default, bad
#   'lora' fields are 400.
set -u
sc=$1
mk=$2
src=$3
command -v curl >/dev/null || { echo "curl not installed: skipped"; exit 77; }
dir=$(mktemp -d /tmp/sc_infer_lora.XXXXXX)
. "$(dirname "$0")/serve_start.sh"
trap serve_cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export OMP_NUM_THREADS=1
py=/usr/bin/python3

$sc init --preset tiny --seed 7 --std 0.1 --out "$dir/t" >/dev/null 2>&1 || { echo "FAIL: init"; exit 1; }
$sc tokenizer train -q --vocab-size 512 --ext .c,.h --out "$dir/t/tokenizer.json" "$src/host" >/dev/null 2>&1 ||
  { echo "FAIL: tokenizer train"; exit 1; }
$sc quantize --model "$dir/t" --out "$dir/t8" >/dev/null 2>&1 || { echo "FAIL: quantize"; exit 1; }
$mk "$dir/t" "$dir/a" 1 0.5 || { echo "FAIL: adapter a"; exit 1; }
$mk "$dir/t" "$dir/b" 3 0.5 q,v,down 2 || { echo "FAIL: adapter b"; exit 1; }
$mk "$dir/t" "$dir/z" 5 0 || { echo "FAIL: adapter z"; exit 1; }
$mk "$dir/t" "$dir/a8" 1 0.5 all 4 "$dir/t8" && $mk "$dir/t" "$dir/b8" 3 0.5 q,v,down 2 "$dir/t8" ||
  { echo "FAIL: adapters for t8"; exit 1; }
# an adapter for another base: other shapes; one whose config names another model
$sc init --preset tiny --seed 9 --std 0.1 --out "$dir/o" >/dev/null 2>&1
sed 's/"intermediate_size":[[:space:]]*[0-9]*/"intermediate_size": 320/' "$dir/o/config.json" >"$dir/o/c" && mv "$dir/o/c" "$dir/o/config.json"
$mk "$dir/o" "$dir/other" 1 0.5 all 4 "$dir/t" || { echo "FAIL: adapter other"; exit 1; }
$mk "$dir/t" "$dir/named" 1 0.5 all 4 "models/some-other-base" || { echo "FAIL: adapter named"; exit 1; }

P='int main(void) { int x = 0; int y = 1; return x + y; }
int f(int x) { return x'
P2='static int count(const char *s) {'
gen() { # MODEL PROMPT [options]: the greedy text as od -c
  m=$1 p=$2
  shift 2
  $sc complete --model "$dir/$m" --prompt "$p" -n 24 "$@" 2>"$dir/err" | od -c
}
base=$(gen t "$P")
a=$(gen t "$P" --lora "$dir/a")
grep -q "1 LoRA adapter: 0 a" "$dir/err" || fail "complete --lora: no adapter line: $(cat "$dir/err")"
b=$(gen t "$P" --lora "$dir/b")
[ "$a" != "$base" ] && [ "$b" != "$base" ] && [ "$a" != "$b" ] || fail "the adapters do not change the text"
[ "$(gen t "$P" --lora "$dir/z")" = "$base" ] || fail "an adapter with B = 0 changed the text"
[ "$(gen t "$P" --lora-scaled "$dir/a:0")" = "$base" ] || fail "--lora-scaled A:0 changed the text"
[ "$(gen t "$P" --lora-scaled "$dir/a:1")" = "$a" ] || fail "--lora-scaled A:1 differs from --lora A"
[ "$(gen t "$P" --lora "$dir/a,$dir/b")" = "$(gen t "$P" --lora "$dir/a" --lora-scaled "$dir/b:1")" ] ||
  fail "a comma list differs from two options"
[ "$(gen t "$P" --lora "x=$dir/a" --lora "y=$dir/z")" = "$a" ] || fail "A + a zero adapter differs from A"
# speculative decoding with adapters: the adapted target's own text
[ "$(gen t "$P" --lora "$dir/a" --lookup 3)" = "$a" ] || fail "--lookup with --lora differs from --lora alone"
[ "$(gen t "$P" --lora "$dir/a" --draft "$dir/t8" --draft-min-p 0)" = "$a" ] ||
  fail "--draft with --lora differs from --lora alone"
grep -q "complete: speculative" "$dir/err" || fail "no speculative line: $(cat "$dir/err")"
# refusals: one line each (option, then what the line must say)
refuse() {
  $sc complete --model "$dir/t" --prompt x -n 2 "$1" "$2" >/dev/null 2>"$dir/err" && fail "$1 $2 accepted"
  [ "$(wc -l <"$dir/err")" = 1 ] && grep -q "$3" "$dir/err" || fail "$1 $2: $(cat "$dir/err")"
}
refuse --lora "$dir/other" "has shape .*, the base needs"
refuse --lora "$dir/named" "another base"
refuse --lora "$dir/nonexistent" "nonexistent"
refuse --lora-scaled "$dir/a:x" "not a number"
refuse --lora-scaled "$dir/a" "expected"
refuse --lora "a=$dir/a,a=$dir/b" "named 'a'"
# an INT8 copy under another directory name answers to the name it was quantized from (quantized_from)
$sc quantize --model "$dir/t" --out "$dir/q8copy" >/dev/null 2>&1 || fail "quantize q8copy"
[ "$(gen q8copy "$P" --lora "$dir/a")" = "$(gen t8 "$P" --lora "$dir/a8")" ] ||
  fail "an adapter for t on t's INT8 copy q8copy: $(cat "$dir/err")"
$sc complete --model "$dir/q8copy" --prompt x -n 2 --lora "$dir/named" >/dev/null 2>"$dir/err" &&
  fail "an adapter for another base accepted on an INT8 copy"
[ "$(wc -l <"$dir/err")" = 1 ] && grep -q "another base than $dir/q8copy" "$dir/err" || fail "q8copy named: $(cat "$dir/err")"
# --plan: the adapters' memory next to the base's, no model run
$sc serve --model "$dir/t" --lora "A=$dir/a" --parallel 2 --ctx 64 --plan >"$dir/plan" 2>"$dir/err" || fail "serve --plan: $(cat "$dir/err")"
grep -q "1 LoRA adapter (.*A rank 4), 2 sessions x 64 positions" "$dir/plan" &&
  grep -q "CPU engine: weights .* + LoRA adapters 0.1 MiB" "$dir/plan" || fail "serve --plan: $(cat "$dir/plan")"
echo "complete: adapters change the text, B = 0 and scale 0 do not, speculation keeps it, refusals are one line"

printf %s "$P" >"$dir/p"
printf %s "$P2" >"$dir/p2"
check_serve() { # MODEL ADAPTER_A ADAPTER_B [serve options]: concurrent requests choosing adapters
  m=$1 aa=$2 bb=$3
  shift 3
  for k in base a b; do
    case $k in base) o="" ;; a) o="--lora $dir/$aa" ;; b) o="--lora $dir/$bb" ;; esac
    # shellcheck disable=SC2086
    $sc complete --model "$dir/$m" --prompt "$P" -n 24 $o 2>/dev/null >"$dir/want_$k"
    # shellcheck disable=SC2086
    $sc complete --model "$dir/$m" --prompt "$P2" -n 16 $o 2>/dev/null >"$dir/want2_$k"
  done
  start --model "$dir/$m" --parallel 2 --lora "A=$dir/$aa" --lora "B=$dir/$bb" --lora-init-without-apply "$@"
  $py - "$port" "$dir" "$src/tests" <<'PY' || fail "serve $m $* (log: $(tail -3 "$dir/serve.log"))"
import sys
port, d = int(sys.argv[1]), sys.argv[2]
sys.path.insert(0, sys.argv[3])
from serve_client import concurrently, request, server_text
def rd(n): return server_text(f"{d}/{n}")
def req(method, path, body=None, status=200): return request(port, method, path, body, status)
l = req("GET", "/lora-adapters")
assert [(x["id"], x["name"], x["scale"]) for x in l] == [(0, "A", 0), (1, "B", 0)], l
assert l[0]["path"].endswith("/a") or l[0]["path"].endswith("/a8"), l
p, p2 = rd("p"), rd("p2")
sets = {"base": None, "a": [{"id": 0, "scale": 1.0}], "b": [{"id": 1, "scale": 1}, {"id": 0, "scale": 0}]}
jobs = []
for k in ["a", "b", "base", "b", "a", "b"]:
    jobs.append(("/completion", dict(prompt=p, n_predict=24, temperature=0, lora=sets[k]), rd("want_" + k), "content"))
    jobs.append(("/v1/completions", dict(prompt=p2, max_tokens=16, temperature=0, lora=sets[k]), rd("want2_" + k), "text"))
for j in jobs:
    if j[1]["lora"] is None: del j[1]["lora"]
out = concurrently(lambda i: req("POST", jobs[i][0], jobs[i][1]), len(jobs))
for (path, body, want, field), o in zip(jobs, out):
    got = o["content"] if field == "content" else o["choices"][0]["text"]
    assert got == want, (path, body.get("lora"), got, want)
assert len({rd("want_a"), rd("want_b"), rd("want_base")}) == 3, "the adapters' texts are not all different"
# the prompt cache: a slot's prefix is not reused under another adapter set, and is under the same one
r1 = req("POST", "/completion", dict(prompt=p + " + 1", n_predict=4, temperature=0, lora=sets["a"]))
r2 = req("POST", "/completion", dict(prompt=p + " + 1", n_predict=4, temperature=0, lora=sets["a"]))
assert r2["tokens_cached"] > 5, ("same adapters: cache not reused", r2["tokens_cached"])
r3 = req("POST", "/completion", dict(prompt=p + " + 1", n_predict=4, temperature=0, lora=[{"id": 0, "scale": 0.5}]))
assert r3["tokens_cached"] == 0, ("another adapter scale reused a cache", r3["tokens_cached"])
# POST /lora-adapters sets what requests without a 'lora' field apply
assert req("POST", "/lora-adapters", [{"id": 1, "scale": 1.0}]) == {"success": True}
assert [x["scale"] for x in req("GET", "/lora-adapters")] == [0, 1]
assert req("POST", "/completion", dict(prompt=p, n_predict=24, temperature=0))["content"] == rd("want_b")
assert req("POST", "/completion", dict(prompt=p, n_predict=24, temperature=0, lora=[]))["content"] == rd("want_base")
# bad fields: 400 naming the field
for bad in ([{"id": 2, "scale": 1}], [{"id": 0}], "A", [{"id": 0, "scale": 1}, {"id": 0, "scale": 2}],
            [{"id": 0.5, "scale": 1}]):
    e = req("POST", "/completion", dict(prompt=p, n_predict=2, lora=bad), status=400)
    assert "lora" in e["error"]["message"], e
req("POST", "/lora-adapters", {"id": 0}, status=400)
req("PUT", "/lora-adapters", [], status=405)
print("serve: %d concurrent requests with their adapters = complete --lora; cache keyed on the set" % len(jobs))
PY
  stop
}
check_serve t a b
check_serve t8 a8 b8 --lookup 3
# serve refuses an adapter for another base with one line
$sc serve --model "$dir/t" --port 0 --lora "X=$dir/other" >/dev/null 2>"$dir/err" && fail "serve: other base accepted"
[ "$(wc -l <"$dir/err")" = 1 ] && grep -q "the base needs" "$dir/err" || fail "serve other base: $(cat "$dir/err")"
[ $fails = 0 ] || exit 1
echo "infer_lora: all checks passed"
