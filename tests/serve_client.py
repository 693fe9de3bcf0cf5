"""serve_client.py — what the Python checks of the server test scripts (infer_spec.sh, infer_lora.sh,
gpu/infer_cuda_emu.sh) share, each having carried a copy: a file's text as the server's JSON carries it, one JSON
request to the server on 127.0.0.1, and requests run all at once. A heredoc imports it after
sys.path.insert(0, "<source>/tests")."""
import codecs
import http.client
import json
import threading

# the server writes each byte that is not UTF-8 as one U+FFFD (serve_utf8_clean): "byte" decodes the same way
codecs.register_error("byte", lambda e: ("\ufffd", e.start + 1))


def server_text(path, nul=True):
    """The bytes of path (what `complete` printed) as the server sends them: one U+FFFD per invalid byte; with
    nul, NUL as U+FFFD too and complete's closing newline dropped (files written from complete's stdout)."""
    text = open(path, "rb").read().decode("utf-8", "byte")
    return text.replace("\0", "\ufffd").removesuffix("\n") if nul else text


def request(port, method, path, body=None, status=200, timeout=120):
    """One request with a JSON body (or none); the reply's status must be status; returns the parsed reply."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    assert r.status == status, (path, body, r.status, data)
    return json.loads(data)


def concurrently(fn, n):
    """fn(0), ..., fn(n - 1), each in a thread of its own, all at once; their results in that order. Fails with
    what each one that raised said."""
    out, errs = [None] * n, []

    def run(i):
        try:
            out[i] = fn(i)
        except Exception as e:  # noqa: BLE001 (every failure is reported, with the others)
            errs.append(repr(e))

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs, errs
    return out
