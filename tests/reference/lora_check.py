#!/usr/bin/python3
# LoRA against an independent float64 PyTorch reference (issue 16): PEFT's math, y = x W^T + (alpha/r) B(A x), on
# top of llama_ref.py's Llama. The adapter is written here in PEFT's layout by this script's own writer (random A and
# B, so nothing is zero), `smallcoder forward --lora` reads it, and loss, logits and every adapter gradient
# (dA, dB under PEFT names) are compared with torch autograd. Also: a fresh adapter (`lora init`, B = 0) gives the
# base's logits bit for bit; `lora merge` gives the unmerged logits within tolerance and keeps the base's dtype.
# Usage: lora_check.py SMALLCODER [--keep DIR]. Exit 0 ok, 1 failure, 77 torch/numpy missing.
import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:
    print("lora_check.py: SKIP: needs Debian's python3-torch and python3-numpy (/usr/bin/python3): %s" % e)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
import open_models  # noqa: E402
from run_check import safetensors_write_f32  # noqa: E402

MODULES = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
           "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}


def safetensors_dtypes(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    return {v["dtype"] for k, v in hdr.items() if k != "__metadata__"}


def write_adapter(path, cfg, r, alpha, targets, seed, base_name, rslora=False):
    """A PEFT adapter dir with random A and B (B scaled so the branch matters but does not dominate)."""
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    shapes = cfg.shapes()
    tensors = {}
    for i in range(cfg.layers):
        for mod in targets:
            out_f, in_f = shapes["model.layers.%d.%s.%s.weight" % (i, MODULES[mod], mod)]
            pre = "base_model.model.model.layers.%d.%s.%s." % (i, MODULES[mod], mod)
            tensors[pre + "lora_A.weight"] = (rng.uniform(-1, 1, (r, in_f)) / np.sqrt(in_f)).astype(np.float32)
            tensors[pre + "lora_B.weight"] = (0.05 * rng.standard_normal((out_f, r))).astype(np.float32)
    safetensors_write_f32(os.path.join(path, "adapter_model.safetensors"), tensors)
    conf = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "lora_dropout": 0.0,
            "target_modules": list(targets), "bias": "none", "fan_in_fan_out": False, "use_rslora": rslora,
            "base_model_name_or_path": base_name, "modules_to_save": None, "rank_pattern": {}, "alpha_pattern": {}}
    with open(os.path.join(path, "adapter_config.json"), "w") as f:
        json.dump(conf, f, indent=2)
    return {n: torch.tensor(t, dtype=torch.float64, requires_grad=True) for n, t in tensors.items()}


def reference(cfg, params, adapter, scaling, ids):
    """llama_ref's forward with PEFT's LoRA Linear in place of its linear; the base frozen."""
    base_linear = llama_ref.linear

    def lora_linear(h, p, name):
        y = base_linear(h, p, name)
        a = adapter.get("base_model.model." + name + ".lora_A.weight")
        if a is None:
            return y
        b = adapter["base_model.model." + name + ".lora_B.weight"]
        return y + (h @ a.T) @ b.T * scaling

    for t in params.values():
        t.requires_grad_(False)
    llama_ref.linear = lora_linear
    try:
        logits, loss = llama_ref.forward(cfg, params, ids)
    finally:
        llama_ref.linear = base_linear
    loss.backward()
    grads = {n: t.grad.detach().numpy().copy() for n, t in adapter.items()}
    return logits.detach().numpy(), loss.item(), grads


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        raise llama_ref.RefError("`%s` exited %d:\n%s%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p.stdout


def forward(sc, model, ids, work, tag, lora=None, grads=False):
    logits = os.path.join(work, tag + ".npy")
    argv = [sc, "forward", "--model", model, "--ids", ids, "--logits", logits, "--threads", "1"]
    if lora:
        argv += ["--lora", lora]
    if grads:
        argv += ["--grads", os.path.join(work, tag + ".grads.safetensors")]
    out = run(argv)
    loss = float(re.search(r"^loss\s+(\S+)\s*$", out, re.M).group(1))
    g = llama_ref.safetensors_read(os.path.join(work, tag + ".grads.safetensors")) if grads else None
    return loss, np.load(logits), g


def check(sc, work):
    fails = 0
    base = os.path.join(work, "base")
    run([sc, "init", "--force", "--out", base, "--preset", "tiny", "--seed", "3", "--untied", "--std", "0.05"])
    cfg = llama_ref.Config(os.path.join(base, "config.json"))
    ids_path = os.path.join(work, "ids")
    ids = np.random.default_rng(5).integers(0, cfg.vocab, 96)
    with open(ids_path, "w") as f:
        f.write(" ".join(str(int(i)) for i in ids) + "\n")
    tid = llama_ref.read_ids(ids_path, cfg.vocab)

    # 1. gradients: every module (alpha/r), and a subset with rsLoRA (alpha/sqrt(r))
    cases = [("all", 4, 8.0, list(MODULES), False), ("qv-rslora", 2, 3.0, ["q_proj", "v_proj"], True)]
    for tag, r, alpha, targets, rslora in cases:
        ad_dir = os.path.join(work, "adapter-" + tag)
        adapter = write_adapter(ad_dir, cfg, r, alpha, targets, seed=11, base_name="base", rslora=rslora)
        loss, logits, grads = forward(sc, base, ids_path, work, tag, lora=ad_dir, grads=True)
        _, params = llama_ref.load_model(base)
        scaling = alpha / np.sqrt(r) if rslora else alpha / r
        ref_logits, ref_loss, ref_grads = reference(cfg, params, adapter, scaling, tid)
        print("== LoRA %s: r %d, alpha %g, %s, %d adapter tensors" % (tag, r, alpha, ",".join(targets), len(adapter)))
        fails += llama_ref.compare(ref_loss, ref_logits, ref_grads, loss, logits, grads, label="lora-" + tag)

    # 1b. published families (tests/reference/open_models.py, 1 layer, vocab 512): qwen2's q/k/v biases under the
    # adapter, DeepSeek-Coder's linear rope_scaling; BF16 bases, and the merge keeps BF16
    for family, tag in (("qwen2.5-coder-0.5b", "qwen2"), ("deepseek-coder-1.3b", "deepseek")):
        fam = os.path.join(work, tag)
        open_models.make(family, fam, layers=1, vocab=512, dtype="BF16", seed=4)
        fcfg = llama_ref.Config(os.path.join(fam, "config.json"))
        ad_dir = os.path.join(work, "adapter-" + tag)
        adapter = write_adapter(ad_dir, fcfg, 4, 8.0, list(MODULES), seed=12, base_name=tag)
        loss, logits, grads = forward(sc, fam, ids_path, work, tag, lora=ad_dir, grads=True)
        _, params = llama_ref.load_model(fam)
        ref_logits, ref_loss, ref_grads = reference(fcfg, params, adapter, 2.0, tid)
        print("== LoRA on a %s-shaped base (1 layer, BF16): r 4, alpha 8, every module" % family)
        fails += llama_ref.compare(ref_loss, ref_logits, ref_grads, loss, logits, grads, label="lora-" + tag)
        merged = os.path.join(work, tag + "-merged")
        run([sc, "lora", "merge", "--model", fam, "--adapter", ad_dir, "--out", merged])
        dtypes = safetensors_dtypes(os.path.join(merged, "model.safetensors"))
        ok = dtypes == {"BF16"}
        fails += not ok
        print("merged %s dtype: %s (base BF16)  %s" % (tag, ",".join(sorted(dtypes)), "ok" if ok else "FAIL"))

    # 2. a fresh adapter (B = 0) is the base exactly
    run([sc, "lora", "init", "--model", base, "--out", os.path.join(work, "fresh"), "--rank", "8"])
    b_loss, b_logits, _ = forward(sc, base, ids_path, work, "base")
    f_loss, f_logits, _ = forward(sc, base, ids_path, work, "fresh", lora=os.path.join(work, "fresh"))
    same = np.array_equal(b_logits, f_logits) and b_loss == f_loss
    fails += not same
    print("zero-B adapter: logits %s the base's  %s" % ("bit-identical to" if same else "DIFFER from",
                                                          "ok" if same else "FAIL"))

    # 3. merged = unmerged (F32 base), and an F16 base stays F16 after the merge
    merged = os.path.join(work, "merged")
    ad_dir = os.path.join(work, "adapter-all")
    run([sc, "lora", "merge", "--model", base, "--adapter", ad_dir, "--out", merged])
    u_loss, u_logits, _ = forward(sc, base, ids_path, work, "unmerged", lora=ad_dir)
    m_loss, m_logits, _ = forward(sc, merged, ids_path, work, "merged")
    d = float(np.abs(u_logits.astype(np.float64) - m_logits).max())
    ok = d <= 1e-4 and abs(u_loss - m_loss) <= 1e-5
    fails += not ok
    print("merged vs unmerged: max |logit diff| %.2e, loss %.6f vs %.6f (tol 1e-4)  %s" % (d, u_loss, m_loss,
                                                                                      "ok" if ok else "FAIL"))
    dtypes = safetensors_dtypes(os.path.join(merged, "model.safetensors"))
    ok = dtypes == {"F32"}
    fails += not ok
    print("merged dtype: %s (base F32)  %s" % (",".join(sorted(dtypes)), "ok" if ok else "FAIL"))

    # 4. another base: one line naming the file and the field
    other = os.path.join(work, "other")
    run([sc, "init", "--force", "--out", other, "--preset", "mini", "--seed", "1"])
    p = subprocess.run([sc, "forward", "--model", other, "--ids", ids_path, "--lora", os.path.join(work, "fresh")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    lines = p.stderr.strip().splitlines()
    ok = p.returncode != 0 and len(lines) == 1 and "adapter_config.json" in lines[0] and "base_model_name_or_path" in lines[0]
    fails += not ok
    print("adapter for another base: %s  %s" % (lines[-1] if lines else "(no message)", "ok" if ok else "FAIL"))
    return fails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("smallcoder")
    ap.add_argument("--keep", help="work in this dir and keep it")
    a = ap.parse_args()
    torch.set_num_threads(1)
    work = a.keep or tempfile.mkdtemp(prefix="sc-lora-ref-")
    os.makedirs(work, exist_ok=True)
    try:
        fails = check(a.smallcoder, work)
    except llama_ref.RefError as e:
        print("FAIL: %s" % e)
        fails = 1
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("lora reference check: %s" % ("all within tolerance" if fails == 0 else "%d FAILURES" % fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
