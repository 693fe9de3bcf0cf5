#!/usr/bin/env python3
"""report.py — writes the markdown report of bench/gpu-suite: the stage results (builds, tests, sanitizers) and a
table of our kernels against PyTorch on the same GPU (ratio = PyTorch time / our time, so > 1 means we are
faster), with achieved GB/s against the memory peak and TFLOP/s against the best cuBLAS FP16 GEMM measured here.
Usage: report.py OURS.jsonl TORCH.jsonl STAGES.txt > report.md  (missing files are reported as missing)"""
import json
import os
import sys


def load(path):
    rows = []
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    return rows


def main():
    ours, torch_rows = load(sys.argv[1]), load(sys.argv[2])
    stages = open(sys.argv[3]).read() if os.path.exists(sys.argv[3]) else "(no stage log)\n"
    dev = next((r for r in ours if "device" in r), {})
    tinfo = next((r for r in torch_rows if "torch" in r), {})
    gemms = [r for r in ours if r.get("op") == "gemm"]
    fp16_peak = max([g["tflops"] for g in gemms if g["mode"].startswith("f16 in, f32 accumulate")] or [0])
    peak_gbs = dev.get("peak_gbs", 0) or 0
    out = []
    out.append("# GPU suite: %s\n" % dev.get("device", "unknown GPU"))
    out.append("sm_%s, %s SMs, %s GiB, memory peak %s GB/s (from the clock and bus width), best FP16 cuBLAS GEMM "
               "measured %.0f TFLOP/s; tensor cores usable: %s. PyTorch %s.\n" %
               (dev.get("sm", "?"), dev.get("sms", "?"), dev.get("mem_gib", "?"), peak_gbs or "?", fp16_peak,
                "yes" if dev.get("tensor_cores") else "no", tinfo.get("torch", "?")))
    out.append("## Stages\n\n```\n" + stages.rstrip() + "\n```\n")
    out.append("## Kernels against PyTorch (304m shapes, FP16)\n")
    out.append("ratio = PyTorch ms / our ms (> 1: ours faster). Bandwidth-bound ops show GB/s and % of the memory "
               "peak; attention and the classifier show TFLOP/s and % of the best cuBLAS GEMM.\n")
    out.append("| op | dir | T | path | ours ms | PyTorch ms | ratio | ours GB/s (% peak) | ours TFLOP/s (% GEMM) |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    tmap = {(r["op"], r["dir"], r["T"]): r for r in torch_rows if "op" in r}
    for r in ours:
        if r.get("op") in (None, "gemm"):
            continue
        t = tmap.get((r["op"], r["dir"], r["T"]))
        ratio = "%.2f" % (t["ms"] / r["ms"]) if t and r["ms"] > 0 else "-"
        gbs = "%.0f (%.0f%%)" % (r["gbs"], 100 * r["gbs"] / peak_gbs) if r.get("gbs") and peak_gbs else "-"
        tf = "%.1f (%.0f%%)" % (r["tflops"], 100 * r["tflops"] / fp16_peak) if r.get("tflops") and fp16_peak else "-"
        out.append("| %s | %s | %d | %s | %.3f | %s | %s | %s | %s |" %
                   (r["op"], r["dir"], r["T"], r.get("path", "-"), r["ms"], "%.3f" % t["ms"] if t else "-", ratio,
                    gbs, tf))
    extra = [r for r in torch_rows if r.get("op") == "cross_entropy_only"]
    if extra:
        out.append("\nPyTorch F.cross_entropy alone on precomputed FP32 logits (fwd+bwd): " +
                   ", ".join("T=%d %.3f ms" % (r["T"], r["ms"]) for r in extra) + ".\n")
    if gemms:
        out.append("\n## cuBLAS GEMM precision modes\n")
        out.append("| m x n x k | mode | ms | TFLOP/s |")
        out.append("|---|---|---|---|")
        for g in gemms:
            out.append("| %dx%dx%d | %s | %.3f | %.1f |" % (g["m"], g["n"], g["k"], g["mode"], g["ms"], g["tflops"]))
        out.append("\nThe model uses FP16 inputs with FP32 accumulation everywhere (FP32 output for weight "
                   "gradients): FP16 accumulation loses the sums' precision, and FP32/TF32 data doubles the traffic.\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
