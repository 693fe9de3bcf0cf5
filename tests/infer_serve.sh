#!/bin/sh
# infer_serve.sh SMALLCODER SOURCE_DIR — `smallcoder serve` over loopback on a random port with real clients
# (curl, and Python's http.client for concurrency and disconnects): every endpoint, SSE streaming, the prompt
# cache, 16 concurrent clients on 2 slots, 503 from a full queue, 400/401/404/405/413, and a client that goes away
# mid-stream (the server must cancel and stay healthy).
set -u
sc=$1
src=$2
command -v curl >/dev/null || { echo "curl not installed: skipped"; exit 77; }
dir=$(mktemp -d /tmp/sc_infer_serve.XXXXXX)
. "$(dirname "$0")/serve_start.sh"
trap serve_cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
"$(dirname "$0")/infer_model.sh" "$sc" "$src" "$dir" || { echo "FAIL: could not train the test model"; exit 1; }
$sc quantize --model "$dir/model" --out "$dir/int8" 2>/dev/null || { echo "FAIL: quantize"; exit 1; }

K="Authorization: Bearer k3y"
code() { curl -s -o "$dir/body" -w '%{http_code}' "$@"; }

start --model "$dir/int8" --parallel 2 --queue 4 --api-key k3y --max-body 64KiB --alias tiny8
[ "$(code $url/health)" = 200 ] && grep -q '"status":"ok"' "$dir/body" || fail "/health"
[ "$(code $url/v1/models)" = 401 ] || fail "/v1/models without the key is not 401"
[ "$(code -H "$K" $url/v1/models)" = 200 ] && grep -q '"id":"tiny8"' "$dir/body" || fail "/v1/models: $(cat "$dir/body")"
[ "$(code -H "Authorization: Bearer wrong" $url/completion -d '{"prompt":"x"}')" = 401 ] || fail "wrong key not 401"

# /completion, greedy: the same as `complete`
want=$($sc complete --model "$dir/int8" --prompt "int main(" -n 12 2>/dev/null)
[ "$(code -H "$K" $url/completion -d '{"prompt":"int main(","n_predict":12,"temperature":0}')" = 200 ] || fail "/completion"
got=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["content"])' "$dir/body")
[ "$got" = "$want" ] || fail "/completion '$got' differs from complete '$want'"
grep -q '"tokens_predicted":12' "$dir/body" && grep -q '"timings"' "$dir/body" || fail "/completion fields: $(cat "$dir/body")"
# prompt cache: the same prefix again reuses the cached KV
code -H "$K" $url/completion -d '{"prompt":"int main(int argc","n_predict":4,"temperature":0}' >/dev/null
code -H "$K" $url/completion -d '{"prompt":"int main(int argc, char","n_predict":4,"temperature":0}' >/dev/null
cached=$(sed 's/.*"tokens_cached":\([0-9]*\).*/\1/' "$dir/body")
[ "$cached" -gt 2 ] || fail "prompt cache not reused (tokens_cached $cached): $(cat "$dir/body")"
# /infill (llama.cpp fields) = complete --prefix --suffix
want=$($sc complete --model "$dir/int8" --prefix 'int f(int a) {
  return ' --suffix ';
}' -n 10 2>/dev/null)
[ "$(code -H "$K" $url/infill -d '{"input_prefix":"int f(int a) {\n  return ","input_suffix":";\n}","n_predict":10,"temperature":0,"input_extra":[]}')" = 200 ] || fail "/infill $(cat "$dir/body")"
got=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["content"])' "$dir/body")
[ "$got" = "$want" ] || fail "/infill '$got' differs from complete FIM '$want'"
[ "$(code -H "$K" $url/infill -d '{"input_prefix":"a","input_suffix":"b","input_extra":[{"filename":"x.c","text":"int x;"}],"n_predict":3}')" = 200 ] || fail "/infill with input_extra"
# /v1/completions, plain and streamed (SSE ending in [DONE]); the streamed pieces join to the plain text
[ "$(code -H "$K" $url/v1/completions -d '{"model":"tiny8","prompt":"static int ","max_tokens":10,"temperature":0}')" = 200 ] || fail "/v1/completions"
plain=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["object"]=="text_completion" and d["usage"]["completion_tokens"]>0; print(d["choices"][0]["text"])' "$dir/body") || fail "/v1/completions body: $(cat "$dir/body")"
curl -sN -H "$K" $url/v1/completions -d '{"prompt":"static int ","max_tokens":10,"temperature":0,"stream":true}' >"$dir/sse"
tail -c 20 "$dir/sse" | grep -q 'data: \[DONE\]' || fail "no [DONE] at the end of the stream"
joined=$(/usr/bin/python3 -c '
import json,sys
out=""
for l in open(sys.argv[1]):
    if l.startswith("data: {"): out += json.loads(l[6:])["choices"][0]["text"]
print(out)' "$dir/sse")
[ "$joined" = "$plain" ] || fail "streamed '$joined' differs from plain '$plain'"
curl -sN -H "$K" $url/completion -d '{"prompt":"int ","n_predict":5,"stream":true}' >"$dir/sse"
[ "$(grep -c '^data: {' "$dir/sse")" -ge 2 ] && tail -n 2 "$dir/sse" | grep -q '"stop":true' || fail "/completion SSE: $(cat "$dir/sse")"
# OpenAI suffix = fill in the middle
[ "$(code -H "$K" $url/v1/completions -d '{"prompt":"int f(int a) {\n  return ","suffix":";\n}","max_tokens":10,"temperature":0}')" = 200 ] || fail "/v1/completions suffix"
got=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["choices"][0]["text"])' "$dir/body")
[ "$got" = "$want" ] || fail "/v1/completions with suffix '$got' differs from FIM '$want'"
# errors
[ "$(code -H "$K" $url/completion -d '{"prompt":')" = 400 ] && grep -q "not valid JSON" "$dir/body" || fail "bad JSON"
[ "$(code -H "$K" $url/completion -d '{"prompt":"x","n_predict":"lots"}')" = 400 ] && grep -q "n_predict" "$dir/body" || fail "bad field"
[ "$(code -H "$K" $url/completion -d '{"n_predict":3}')" = 400 ] && grep -q "'prompt' is required" "$dir/body" || fail "missing prompt"
[ "$(code -H "$K" $url/completion -d '{"prompt":"x","temperature":-1}')" = 400 ] || fail "negative temperature"
[ "$(code -H "$K" $url/completion -d '{"prompt":[1,2,99999]}')" = 400 ] || fail "token id out of range"
[ "$(code -H "$K" $url/completion -d '[1,2]')" = 400 ] || fail "non-object body"
[ "$(code -H "$K" $url/nope)" = 404 ] || fail "unknown path not 404"
[ "$(code -H "$K" $url/completion)" = 405 ] || fail "GET /completion not 405"
head -c 100000 /dev/zero | tr '\0' a | sed 's/^/{"prompt":"/;s/$/"}/' >"$dir/big.json"
[ "$(code -H "$K" $url/completion --data-binary @"$dir/big.json")" = 413 ] || fail "oversized body not 413"

# 16 concurrent clients on 2 slots + queue 4: every reply is 200 or 503, at least 6 succeed, some get 503
/usr/bin/python3 - "$port" <<'PY' || fail "concurrent clients"
import http.client, json, sys, threading
port = int(sys.argv[1]); codes = []
def one(i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/completion", json.dumps({"prompt": "int x%d = " % i, "n_predict": 200, "temperature": 0.5, "seed": i}),
              {"Authorization": "Bearer k3y", "Content-Type": "application/json"})
    r = c.getresponse(); body = r.read(); codes.append(r.status)
    if r.status == 200: assert json.loads(body)["tokens_predicted"] >= 1
ts = [threading.Thread(target=one, args=(i,)) for i in range(16)]
[t.start() for t in ts]; [t.join() for t in ts]
print("16 clients:", sorted(codes))
assert len(codes) == 16 and set(codes) <= {200, 503} and codes.count(200) >= 6, codes
PY
stop

# a client that goes away mid-stream: a slower random model, 1 slot; the server cancels and serves the next one
$sc init --preset small --vocab-size 1024 --out "$dir/small" >/dev/null 2>&1 && cp "$dir/tokenizer.json" "$dir/small/"
start --model "$dir/small" --parallel 1 --threads 1
/usr/bin/python3 - "$port" <<'PY' || fail "disconnect mid-stream"
import json, socket, sys, time
port = int(sys.argv[1])
# a fixed seed: with a random one the sampled text could end (an end token) before 3 events, and the loop below
# would then read a closed socket forever
body = json.dumps({"prompt": "int ", "n_predict": -1, "temperature": 1.0, "top_k": 0, "top_p": 1, "min_p": 0, "stream": True,
                   "seed": 7})
s = socket.create_connection(("127.0.0.1", port))
s.sendall(("POST /completion HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
data = b""
while data.count(b"data: ") < 3:
    chunk = s.recv(4096)
    if not chunk: sys.exit("the stream ended after %d events: %r" % (data.count(b"data: "), data[-300:]))
    data += chunk
s.close()
time.sleep(1.0)
PY
# the server notices at its next write; on a loaded machine that may take a while
for i in $(seq 150); do grep -q "cancelled after" "$dir/serve.log" && break; sleep 0.1; done
grep -q "cancelled after" "$dir/serve.log" || fail "no cancellation logged after the client left: $(cat "$dir/serve.log")"
[ "$(code -m 30 $url/completion -d '{"prompt":"int ","n_predict":3}')" = 200 ] || fail "server unusable after a disconnect"
stop

if [ $fails -ne 0 ]; then echo "infer_serve: $fails failure(s)"; exit 1; fi
echo "infer_serve: all checks passed"
