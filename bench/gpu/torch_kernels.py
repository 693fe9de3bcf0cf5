#!/usr/bin/env python3
"""torch_kernels.py — PyTorch's timings of the ops bench_kernels.c times, on the same GPU and the same 304m shapes
(hidden 1152, 16 heads / 4 KV heads of 72, FFN 3328, vocab 32768), FP16: the reference side of bench/gpu-suite.
RMSNorm (residual add + F.rms_norm), RoPE (HF apply_rotary_pos_emb), F.scaled_dot_product_attention (causal,
GQA), SwiGLU (F.silu(g) * u), the classifier (logits GEMM + F.cross_entropy in FP32), embedding. Forward and
backward separately (backward = the autograd backward of a retained graph). One JSON object per line.
Usage: python3 torch_kernels.py [--T 2048,4096] [--reps 20] [--cpu-check]"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

C, NH, NKV, HD, FF, V = 1152, 16, 4, 72, 3328, 32768


CPU_CHECK = False  # --cpu-check: run the code paths on the CPU in FP32 (a syntax/logic check; times mean nothing)


def median_ms(fn, reps):
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        if CPU_CHECK:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
            continue
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def fwd_bwd(make, reps):
    """make() -> (outputs, grads): time the forward, then the backward of one retained graph"""
    fwd = median_ms(lambda: make(), reps)
    outs, grads = make()
    bwd = median_ms(lambda: torch.autograd.backward(outs, grads, retain_graph=True), reps)
    return fwd, bwd


def rms_norm(s, w, eps):
    if hasattr(F, "rms_norm"):  # torch >= 2.4: the fused op
        return F.rms_norm(s, (s.shape[-1],), w, eps)
    sf = s.float()
    return (sf * torch.rsqrt(sf.pow(2).mean(-1, keepdim=True) + eps)).to(s.dtype) * w


def sdpa(q, k, v, gqa):
    if not hasattr(F, "scaled_dot_product_attention"):  # only for --cpu-check on an old torch
        k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
        T = q.shape[2]
        s = (q @ k.transpose(-1, -2)) / HD ** 0.5
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
        return s.softmax(-1) @ v
    if gqa:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    return F.scaled_dot_product_attention(q, k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1),
                                          is_causal=True)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def emit(op, direction, T, ms, extra=None):
    d = {"op": op, "dir": direction, "T": T, "ms": round(ms, 5)}
    if extra:
        d.update(extra)
    print(json.dumps(d), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", default="2048,4096")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--cpu-check", action="store_true")
    a = ap.parse_args()
    global CPU_CHECK
    CPU_CHECK = a.cpu_check
    if CPU_CHECK:
        dev, h = "cpu", torch.float32
    elif not torch.cuda.is_available():
        print("torch_kernels.py: no CUDA device", file=sys.stderr)
        return 77
    else:
        dev, h = "cuda", torch.float16
    name = "cpu" if CPU_CHECK else torch.cuda.get_device_name(0)
    print(json.dumps({"torch": torch.__version__, "device": name}), flush=True)
    torch.manual_seed(0)
    for T in [int(t) for t in a.T.split(",")]:
        r = a.reps
        # RMSNorm with the residual add before it, as the model uses it
        x = torch.randn(T, C, device=dev, dtype=h, requires_grad=True)
        d = torch.randn(T, C, device=dev, dtype=h, requires_grad=True)
        w = torch.randn(C, device=dev, dtype=h, requires_grad=True)

        def rms():
            s = x + d
            y = rms_norm(s, w, 1e-5)
            return (s, y), (torch.ones_like(s), torch.ones_like(y))
        f, b = fwd_bwd(rms, r)
        emit("rmsnorm", "fwd", T, f)
        emit("rmsnorm", "bwd", T, b)

        # RoPE on q and k, HF layout [1, heads, T, hd]
        q = torch.randn(1, NH, T, HD, device=dev, dtype=h, requires_grad=True)
        k = torch.randn(1, NKV, T, HD, device=dev, dtype=h, requires_grad=True)
        inv = 1.0 / (10000 ** (torch.arange(0, HD, 2, device=dev, dtype=torch.float32) / HD))
        ang = torch.outer(torch.arange(T, device=dev, dtype=torch.float32), inv)
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos().to(h), emb.sin().to(h)

        def rope():
            qr = q * cos + rotate_half(q) * sin
            kr = k * cos + rotate_half(k) * sin
            return (qr, kr), (torch.ones_like(qr), torch.ones_like(kr))
        f, b = fwd_bwd(rope, r)
        emit("rope", "fwd", T, f)
        emit("rope", "bwd", T, b)

        # SDPA, causal, GQA 16/4, head_dim 72
        v = torch.randn(1, NKV, T, HD, device=dev, dtype=h, requires_grad=True)
        gqa = True
        try:
            sdpa(q, k, v, gqa)
        except (TypeError, RuntimeError):  # a torch without enable_gqa: repeat the KV heads
            gqa = False

        def att():
            o = sdpa(q, k, v, gqa)
            return (o,), (torch.ones_like(o),)
        f, b = fwd_bwd(att, r)
        flops = 4.0 * T * (T / 2) * HD * NH
        emit("attention", "fwd", T, f, {"tflops": round(flops / (f * 1e9), 2), "gqa": gqa})
        emit("attention", "bwd", T, b, {"tflops": round(2.5 * flops / (b * 1e9), 2)})

        # SwiGLU on the fused gate|up output
        gu = torch.randn(T, 2 * FF, device=dev, dtype=h, requires_grad=True)

        def swi():
            y = F.silu(gu[:, :FF]) * gu[:, FF:]
            return (y,), (torch.ones_like(y),)
        f, b = fwd_bwd(swi, r)
        emit("swiglu", "fwd", T, f)
        emit("swiglu", "bwd", T, b)

        # classifier: tied-embedding logits + cross-entropy (FP32 softmax, as an FP16 training step would)
        xn = torch.randn(T, C, device=dev, dtype=h, requires_grad=True)
        W = (0.02 * torch.randn(V, C, device=dev, dtype=h)).requires_grad_(True)
        tgt = torch.randint(0, V, (T,), device=dev)

        def cls():
            loss = F.cross_entropy((xn @ W.t()).float(), tgt)
            return (loss,), (torch.ones_like(loss),)
        f, b = fwd_bwd(cls, r)
        emit("classifier", "fwd", T, f)
        emit("classifier", "fwd+bwd", T, f + b)
        logits = torch.randn(T, V, device=dev, dtype=torch.float32, requires_grad=True)

        def ce():
            loss = F.cross_entropy(logits, tgt)
            return (loss,), (torch.ones_like(loss),)
        f, b = fwd_bwd(ce, r)
        emit("cross_entropy_only", "fwd+bwd", T, f + b)

        # embedding
        ids = torch.randint(0, V, (T,), device=dev)
        E = torch.randn(V, C, device=dev, dtype=h, requires_grad=True)

        def embf():
            y = F.embedding(ids, E)
            return (y,), (torch.ones_like(y),)
        f, b = fwd_bwd(embf, r)
        emit("embedding", "fwd", T, f)
        emit("embedding", "bwd", T, b)
        del x, d, w, q, k, v, gu, xn, W, logits, E
        if not CPU_CHECK:
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
