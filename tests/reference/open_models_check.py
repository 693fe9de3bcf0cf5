#!/usr/bin/python3
# ctest driver of issue 17: for each open-model family, a random-weight directory with the published config
# (open_models.py: layers cut, widths kept, storage and sharding as they ship) goes through `smallcoder info` and
# `smallcoder forward --logits --grads`, compared with the float64 PyTorch reference (llama_ref.py: biases, rope
# scaling, untied head, shards, BF16). Then the bad inputs: a missing shard, an index naming an absent tensor,
# an unsupported rope type, a sliding window smaller than the context: one clear line each, exit non-zero.
#   open_models_check.py SMALLCODER [--case NAME ...] [--keep DIR]
# Exit: 0 all good, 1 any failure, 77 (skip) when torch/numpy are missing.
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import torch
except ImportError as e:
    print("open_models_check.py: SKIP: needs Debian's python3-torch and python3-numpy (/usr/bin/python3): %s" % e)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
import open_models  # noqa: E402

T = 48
# name: (family, layers, vocab cut or None, storage, shards). Widths are the published ones; "-v4k" names a
# variant whose vocabulary is cut to 4096 (the full 128k-152k vocabularies would make the float64 reference's
# embedding and lm_head gradients take most of the test's time and ~2 GB); smollm2-135m keeps its full 49152.
CASES = {
    "smollm2-135m-L2": ("smollm2-135m", 2, None, "BF16", 1),
    "smollm2-360m-L2-v4k": ("smollm2-360m", 2, 4096, "F16", 2),
    "qwen2.5-coder-0.5b-L2-v4k": ("qwen2.5-coder-0.5b", 2, 4096, "BF16", 2),
    "qwen2.5-coder-1.5b-L1-v4k": ("qwen2.5-coder-1.5b", 1, 4096, "BF16", 1),
    "deepseek-coder-1.3b-L1-v4k": ("deepseek-coder-1.3b", 1, 4096, "BF16", 3),
    "tinyllama-1.1b-L1-v4k": ("tinyllama-1.1b", 1, 4096, "F32", 1),
    "llama-3.2-1b-L1-v4k": ("llama-3.2-1b", 1, 4096, "BF16", 2),
}


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return p.returncode, p.stdout, p.stderr


def check_family(sc, name, work):
    family, layers, vocab, dtype, shards = CASES[name]
    model = os.path.join(work, name)
    t0 = time.time()
    open_models.make(family, model, layers, vocab, dtype, shards, seed=1)
    gen_time = time.time() - t0
    fails = 0
    rc, out, err = run([sc, "info", model])
    if rc != 0 or "matches the config" not in out:
        print("%s: FAIL: smallcoder info exited %d:\n%s%s" % (name, rc, out, err))
        return 1
    cfg = llama_ref.Config(os.path.join(model, "config.json"))
    ids = np.random.default_rng(5).integers(0, cfg.vocab, T)
    ids_path = os.path.join(work, name + ".ids")
    with open(ids_path, "w") as f:
        f.write(" ".join(str(int(i)) for i in ids) + "\n")
    logits_path = os.path.join(work, name + ".logits.npy")
    grads_path = os.path.join(work, name + ".grads.safetensors")
    t0 = time.time()
    rc, out, err = run([sc, "forward", "--model", model, "--ids", ids_path, "--logits", logits_path,
                        "--grads", grads_path])
    c_time = time.time() - t0
    m = re.search(r"^loss\s+(\S+)\s*$", out, re.M)
    if rc != 0 or not m:
        print("%s: FAIL: smallcoder forward exited %d:\n%s%s" % (name, rc, out, err))
        return 1
    c_logits = np.load(logits_path)
    c_grads = llama_ref.safetensors_read(grads_path)
    t0 = time.time()
    cfg, params = llama_ref.load_model(model)
    ref_logits, ref_loss, ref_grads = llama_ref.run(cfg, params, llama_ref.read_ids(ids_path, cfg.vocab))
    ref_time = time.time() - t0
    extra = []
    if cfg.qkv_bias or cfg.o_bias or cfg.mlp_bias:
        extra.append("biases")
    if cfg.rope_scaling:
        extra.append("rope %s" % cfg.rope_scaling.get("rope_type", cfg.rope_scaling.get("type")))
    print("== %s (%s): %d layers, hidden %d, heads %d/%d, head_dim %d, ffn %d, vocab %d, %s, %s x%d, %s; T=%d "
          "(write %.1f s, smallcoder forward %.1f s, reference %.1f s)"
          % (name, cfg.model_type, cfg.layers, cfg.hidden, cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.ffn, cfg.vocab,
             "tied" if cfg.tied else "untied", dtype, shards, ", ".join(extra) or "plain", T, gen_time, c_time,
             ref_time))
    fails += llama_ref.compare(ref_loss, ref_logits, ref_grads, float(m.group(1)), c_logits, c_grads, label=name,
                               top=3)
    os.remove(grads_path)
    sys.stdout.flush()
    return fails


def expect_one_line(sc, label, model, want):
    """`smallcoder info MODEL` must exit non-zero with exactly one stderr line containing want."""
    rc, out, err = run([sc, "info", model])
    lines = [l for l in err.splitlines() if l.strip()]
    ok = rc != 0 and len(lines) == 1 and want in lines[0]
    print("bad input %-26s exit %d: %s  %s" % (label, rc, lines[0] if lines else "(no message)", "ok" if ok else
                                               "FAIL (wanted one line containing %r)" % want))
    return 0 if ok else 1


def check_bad_inputs(sc, work):
    fails = 0
    # a small sharded model to break in several ways
    base = os.path.join(work, "bad-base")
    open_models.make("smollm2-135m", base, 1, 256, "BF16", 2, seed=3)

    def fresh(name):
        d = os.path.join(work, name)
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(base, d)
        return d

    d = fresh("missing-shard")
    os.remove(os.path.join(d, "model-00002-of-00002.safetensors"))
    fails += expect_one_line(sc, "missing shard", d, "shard model-00002-of-00002.safetensors named by")
    d = fresh("absent-tensor")
    ipath = os.path.join(d, "model.safetensors.index.json")
    with open(ipath) as f:
        index = json.load(f)
    index["weight_map"]["model.layers.0.self_attn.q_proj.bias"] = "model-00001-of-00002.safetensors"
    with open(ipath, "w") as f:
        json.dump(index, f)
    fails += expect_one_line(sc, "index names absent tensor", d,
                             "tensor model.layers.0.self_attn.q_proj.bias is named by the index but absent")

    def edit_config(name, **fields):
        d = fresh(name)
        cpath = os.path.join(d, "config.json")
        with open(cpath) as f:
            c = json.load(f)
        c.update(fields)
        with open(cpath, "w") as f:
            json.dump(c, f)
        return d

    d = edit_config("rope-yarn", rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                               "original_max_position_embeddings": 2048})
    fails += expect_one_line(sc, "rope_scaling yarn", d, "rope_scaling type 'yarn' is not supported")
    d = edit_config("rope-dynamic", rope_scaling={"type": "dynamic", "factor": 2.0})
    fails += expect_one_line(sc, "rope_scaling dynamic", d, "rope_scaling type 'dynamic' is not supported")
    d = edit_config("sliding-window", model_type="mistral", sliding_window=4096, max_position_embeddings=32768)
    fails += expect_one_line(sc, "sliding window < context", d,
                             "sliding_window 4096 is smaller than the context (max_position_embeddings 32768)")
    d = edit_config("bias-missing", attention_bias=True)
    fails += expect_one_line(sc, "declared bias missing", d, "missing tensor model.layers.0.self_attn.q_proj.bias")
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("smallcoder")
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("--keep", help="work here and keep the models")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bad-inputs-only", action="store_true", help="only the bad-input checks (seconds)")
    ap.add_argument("--no-bad-inputs", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(max(1, a.threads))
    work = a.keep or tempfile.mkdtemp(prefix="sc-open-models-")
    os.makedirs(work, exist_ok=True)
    fails = 0
    try:
        for name in ([] if a.bad_inputs_only else a.case or list(CASES)):
            try:
                fails += check_family(a.smallcoder, name, work)
            except llama_ref.RefError as e:
                print("%s: FAIL: %s" % (name, e))
                fails += 1
            if not a.keep:
                shutil.rmtree(os.path.join(work, name), ignore_errors=True)
        if not a.no_bad_inputs:
            fails += check_bad_inputs(a.smallcoder, work)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("open models: %s" % ("all within tolerance" if fails == 0 else "%d FAILURES" % fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
