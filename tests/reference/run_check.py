#!/usr/bin/python3
# ctest driver of the independent check (issue 3 item 7): builds models with `smallcoder init`, runs
# `smallcoder forward --logits --grads` on T=257 random ids and compares loss, logits and every gradient with the
# float64 PyTorch reference in llama_ref.py. Usage: run_check.py SMALLCODER [--keep DIR] [--case NAME ...]
# Exit: 0 all within tolerance, 1 any failure, 77 (skip) only when torch/numpy are missing.
import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import torch  # noqa: F401  (llama_ref needs it; checked here so the skip message comes first)
except ImportError as e:
    print("run_check.py: SKIP: needs Debian's python3-torch and python3-numpy (/usr/bin/python3): %s" % e)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402

T = 257
IDS_SEED = 1234

# name: (init arguments, rewrite norms with random weights, run the reference's own finite-difference self-check).
# `init` sets every norm weight to 1, which would hide a norm weight applied wrongly (or not at all) in the
# forward; the "stress" case draws them from 1 + 0.3 N(0, 1), uses larger weights (sharper attention) and an
# untied lm_head.
CASES = {
    "tiny": (["--preset", "tiny", "--seed", "1"], False, True),
    "tiny-untied-stress": (["--preset", "tiny", "--seed", "2", "--untied", "--std", "0.08"], True, False),
    "304m-2layers": (["--preset", "304m", "--layers", "2", "--seed", "1"], False, False),
}


def safetensors_write_f32(path, tensors):
    """Minimal F32 safetensors writer (header padded to 8 bytes with spaces, as HF's writer does)."""
    header, offset = {}, 0
    names = sorted(tensors)
    for n in names:
        nbytes = tensors[n].size * 4
        header[n] = {"dtype": "F32", "shape": list(tensors[n].shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for n in names:
            f.write(np.ascontiguousarray(tensors[n], dtype="<f4").tobytes())
    os.replace(path + ".tmp", path)


def randomize_norms(model_dir, seed):
    path = os.path.join(model_dir, "model.safetensors")
    tensors = llama_ref.safetensors_read(path)
    rng = np.random.default_rng(seed)
    for n in tensors:
        if n.endswith("norm.weight"):
            tensors[n] = (1.0 + 0.3 * rng.standard_normal(tensors[n].shape)).astype(np.float32)
    safetensors_write_f32(path, tensors)


def run_cmd(argv):
    t0 = time.time()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        raise llama_ref.RefError("`%s` exited %d:\n%s%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p.stdout, time.time() - t0


def check_case(smallcoder, name, work, self_check):
    init_args, stress, do_self_check = CASES[name]
    model = os.path.join(work, name)
    run_cmd([smallcoder, "init", "--force", "--out", model] + init_args)
    if stress:
        randomize_norms(model, seed=7)
    cfg = llama_ref.Config(os.path.join(model, "config.json"))
    # tiny's context is 256; its odd length is left to the 304m-shaped case
    n = min(T, cfg.max_pos) if cfg.max_pos else T
    ids_path = os.path.join(work, name + ".ids")
    ids = np.random.default_rng(IDS_SEED).integers(0, cfg.vocab, n)
    with open(ids_path, "w") as f:
        f.write(" ".join(str(int(i)) for i in ids) + "\n")

    logits_path = os.path.join(work, name + ".logits.npy")
    grads_path = os.path.join(work, name + ".grads.safetensors")
    out, c_time = run_cmd([smallcoder, "forward", "--model", model, "--ids", ids_path, "--logits", logits_path,
                           "--grads", grads_path])
    m = re.search(r"^loss\s+(\S+)\s*$", out, re.M)
    if not m:
        raise llama_ref.RefError("%s: `smallcoder forward` printed no `loss X` line:\n%s" % (name, out))
    c_loss = float(m.group(1))
    c_logits = np.load(logits_path)
    c_grads = llama_ref.safetensors_read(grads_path)
    if c_logits.dtype != np.float32:
        raise llama_ref.RefError("%s: logits are %s, expected float32" % (logits_path, c_logits.dtype))

    t0 = time.time()
    cfg, params = llama_ref.load_model(model)
    ref_logits, ref_loss, ref_grads = llama_ref.run(cfg, params, llama_ref.read_ids(ids_path, cfg.vocab))
    ref_time = time.time() - t0
    print("== %s: %d layers, hidden %d, heads %d/%d, head_dim %d, ffn %d, vocab %d, %s, T=%d  "
          "(smallcoder forward %.1f s, reference %.1f s)"
          % (name, cfg.layers, cfg.hidden, cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.ffn, cfg.vocab,
             "tied" if cfg.tied else "untied", n, c_time, ref_time))
    fails = llama_ref.compare(ref_loss, ref_logits, ref_grads, c_loss, c_logits, c_grads, label=name)
    if self_check and do_self_check:
        t0 = time.time()
        fails += llama_ref.self_check(cfg, params, llama_ref.read_ids(ids_path, cfg.vocab), ref_grads,
                                      log=lambda s: print("%s: %s (%.0f s)" % (name, s, time.time() - t0)))
    sys.stdout.flush()
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("smallcoder", help="path of the smallcoder binary")
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="run only these cases")
    ap.add_argument("--keep", help="work in this dir and keep the models, ids, logits and grads")
    ap.add_argument("--no-self-check", action="store_true", help="skip the reference's finite-difference check")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, see llama_ref.py)")
    a = ap.parse_args()
    torch.set_num_threads(max(1, a.threads))
    work = a.keep or tempfile.mkdtemp(prefix="sc-reference-")
    os.makedirs(work, exist_ok=True)
    fails = 0
    try:
        for name in a.case or list(CASES):
            try:
                fails += check_case(a.smallcoder, name, work, not a.no_self_check)
            except llama_ref.RefError as e:
                print("%s: FAIL: %s" % (name, e))
                fails += 1
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("reference check: %s" % ("all within tolerance" if fails == 0 else "%d FAILURES" % fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
