#!/usr/bin/python3
"""train_torch_cpu.py CONFIG_JSON SEQ MICRO_BATCH STEPS THREADS — the PyTorch FP32 CPU baseline of
bench/train-cpu-vs-torch: the same Llama model as smallcoder's (GQA, RoPE, SwiGLU, RMSNorm, tied embeddings),
written as a PyTorch user would (nn.Linear, F.scaled_dot_product_attention, torch.optim.AdamW fused off),
trained on random ids. Prints one JSON line: median tok/s over steps 2..STEPS (step 1 warms up allocators)."""
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, hd = c["hidden_size"], c["head_dim"]
        self.nh, self.nkv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], hd
        self.n1 = nn.Parameter(torch.ones(C))
        self.n2 = nn.Parameter(torch.ones(C))
        self.qkv = nn.Linear(C, (self.nh + 2 * self.nkv) * hd, bias=False)
        self.o = nn.Linear(self.nh * hd, C, bias=False)
        self.gu = nn.Linear(C, 2 * c["intermediate_size"], bias=False)
        self.down = nn.Linear(c["intermediate_size"], C, bias=False)
        self.eps = c["rms_norm_eps"]

    def norm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q, k, v = self.qkv(self.norm(x, self.n1)).split(
            [self.nh * self.hd, self.nkv * self.hd, self.nkv * self.hd], -1)
        q = q.view(B, T, self.nh, self.hd).transpose(1, 2)
        k = k.view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = v.view(B, T, self.nkv, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = self.nh // self.nkv  # torch 1.13's SDPA has no GQA: repeat K/V as HF transformers does
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, "scaled_dot_product_attention") \
            else causal_attention(q, k, v)
        x = x + self.o(a.transpose(1, 2).reshape(B, T, -1))
        g, u = self.gu(self.norm(x, self.n2)).chunk(2, -1)
        return x + self.down(F.silu(g) * u)


def causal_attention(q, k, v):
    T = q.shape[-2]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return s.softmax(-1) @ v


def rope(x, cos, sin):
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], -1)
    return x * cos + rot * sin


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.emb = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.nf = nn.Parameter(torch.ones(c["hidden_size"]))
        self.eps, self.hd, self.theta = c["rms_norm_eps"], c["head_dim"], c["rope_theta"]

    def forward(self, ids, targets):
        T = ids.shape[1]
        inv = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        f = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        f = torch.cat([f, f], -1)
        cos, sin = f.cos(), f.sin()
        x = self.emb(ids)
        for b in self.blocks:
            x = b(x, cos, sin)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.nf
        logits = x @ self.emb.weight.t()  # tied embeddings
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))


def main():
    cfg_path, seq, mb, steps, threads = sys.argv[1], *map(int, sys.argv[2:6])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c = json.load(open(cfg_path))
    model = Model(c)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    V = c["vocab_size"]
    rates = []
    for step in range(steps):
        ids = torch.randint(0, V, (mb, seq + 1))
        t0 = time.perf_counter()
        loss = model(ids[:, :-1], ids[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if step > 0:
            rates.append(mb * seq / dt)
    print(json.dumps({"impl": "pytorch " + torch.__version__ + " fp32 cpu", "threads": threads, "seq": seq,
                      "micro_batch": mb, "steps": steps, "tok_s": round(statistics.median(rates), 1),
                      "params": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
