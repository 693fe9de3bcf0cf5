#!/usr/bin/python3
# Independent float64 PyTorch implementation of the Llama forward pass, loss and gradients, written from the
# equations and HF LlamaForCausalLM semantics (not from SmallCoder's C), reading an HF model dir (config.json +
# model.safetensors) with its own safetensors reader. Used by run_check.py and by hand to check `smallcoder forward`.
#
#   /usr/bin/python3 tests/reference/llama_ref.py --model DIR --ids FILE \
#       [--compare-logits X.npy] [--compare-grads G.safetensors] [--self-check]
#
# Exit status: 0 all comparisons within tolerance, 1 a comparison failed or bad input, 77 torch/numpy missing.
import argparse
import json
import math
import os
import struct
import sys
import time

try:
    import numpy as np
    import torch
except ImportError as e:  # the ctest treats 77 as "skipped"
    print("llama_ref.py: SKIP: needs Debian's python3-torch and python3-numpy (/usr/bin/python3): %s" % e)
    sys.exit(77)

# Tolerances of issue 3 item 7. The loss tolerance is absolute (the loss is ~ln(vocab), so it is also ~1e-5 relative).
LOSS_TOL_ABS = 1e-4
LOGITS_TOL_ABS = 1e-4
GRAD_TOL_REL = 1e-3


class RefError(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------------
# safetensors: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [b, e]}},
# then the data; offsets are relative to the first byte after the header.

_DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2), "F64": ("<f8", 8)}


def safetensors_read(path):
    """Returns {name: float32/float64 numpy array} of every tensor in the file, validating the layout."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise RefError("%s: cannot read: %s" % (path, e.strerror))
    if len(blob) < 8:
        raise RefError("%s: file is %d bytes, shorter than the 8-byte header length" % (path, len(blob)))
    (hlen,) = struct.unpack("<Q", blob[:8])
    if hlen > len(blob) - 8:
        raise RefError("%s: header length %d exceeds the file size %d" % (path, hlen, len(blob)))
    try:
        header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise RefError("%s: header is not valid JSON: %s" % (path, e))
    if not isinstance(header, dict):
        raise RefError("%s: header is not a JSON object" % path)
    data = memoryview(blob)[8 + hlen:]
    out = {}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info.get("dtype")
        if dtype not in _DTYPES:
            raise RefError("%s: tensor %s has dtype %r, expected one of %s" % (path, name, dtype, sorted(_DTYPES)))
        shape = info.get("shape")
        begin, end = info.get("data_offsets", [None, None])
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise RefError("%s: tensor %s has a bad shape %r" % (path, name, shape))
        npdt, size = _DTYPES[dtype]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= len(data)):
            raise RefError("%s: tensor %s has data_offsets %r outside the %d data bytes" % (path, name, [begin, end],
                                                                                            len(data)))
        if end - begin != count * size:
            raise RefError("%s: tensor %s spans %d bytes, shape %s x %s needs %d" % (path, name, end - begin, shape,
                                                                                    dtype, count * size))
        spans.append((begin, end, name))
        raw = np.frombuffer(data[begin:end], dtype=npdt, count=count)
        if dtype == "BF16":  # bf16 is the top half of an IEEE float32
            arr = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            arr = raw.astype(np.float64 if dtype == "F64" else np.float32)
        out[name] = arr.reshape(shape)
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise RefError("%s: tensors %s and %s overlap" % (path, n0, n1))
    return out


# ---------------------------------------------------------------------------------------------------------------
# config.json (HF LlamaConfig)

class Config:
    def __init__(self, path):
        try:
            with open(path) as f:
                c = json.load(f)
        except OSError as e:
            raise RefError("%s: cannot read: %s" % (path, e.strerror))
        except ValueError as e:
            raise RefError("%s: not valid JSON: %s" % (path, e))

        def get(key, default=None):
            if key in c and c[key] is not None:
                return c[key]
            if default is None:
                raise RefError("%s: field %s is missing" % (path, key))
            return default

        self.hidden = int(get("hidden_size"))
        self.ffn = int(get("intermediate_size"))
        self.layers = int(get("num_hidden_layers"))
        self.heads = int(get("num_attention_heads"))
        self.kv_heads = int(get("num_key_value_heads", self.heads))
        self.head_dim = int(get("head_dim", self.hidden // self.heads))
        self.eps = float(get("rms_norm_eps"))
        self.theta = float(get("rope_theta", 10000.0))
        self.vocab = int(get("vocab_size"))
        self.tied = bool(get("tie_word_embeddings", True))
        self.max_pos = int(c.get("max_position_embeddings") or 0)  # informational: RoPE needs no table size
        # HF model types: LlamaForCausalLM (optional attention_bias on q/k/v/o, mlp_bias on gate/up/down),
        # Qwen2ForCausalLM (q/k/v always carry a bias, o_proj never), MistralForCausalLM (no biases).
        self.model_type = c.get("model_type", "llama")
        if self.model_type not in ("llama", "qwen2", "mistral"):
            raise RefError("%s: model_type %r is not implemented by the reference" % (path, self.model_type))
        attn_bias = bool(c.get("attention_bias", False))
        self.qkv_bias = attn_bias or self.model_type == "qwen2"
        self.o_bias = attn_bias and self.model_type == "llama"
        self.mlp_bias = bool(c.get("mlp_bias", False)) and self.model_type == "llama"
        sw = c.get("sliding_window")
        uses_sw = self.model_type == "mistral" or (self.model_type == "qwen2" and c.get("use_sliding_window"))
        if uses_sw and sw and sw < self.max_pos:
            raise RefError("%s: sliding_window %d < context %d is not implemented by the reference" % (path, sw,
                                                                                                     self.max_pos))
        self.rope_scaling = c.get("rope_scaling") or None
        if self.rope_scaling:
            kind = self.rope_scaling.get("rope_type", self.rope_scaling.get("type"))
            if kind not in ("linear", "llama3", "default"):
                raise RefError("%s: rope_scaling %r is not supported by the reference" % (path, self.rope_scaling))
        if c.get("hidden_act", "silu") != "silu":
            raise RefError("%s: hidden_act %r, the reference implements silu" % (path, c["hidden_act"]))
        if self.heads % self.kv_heads or self.head_dim % 2:
            raise RefError("%s: num_attention_heads %d / num_key_value_heads %d / head_dim %d unsupported"
                           % (path, self.heads, self.kv_heads, self.head_dim))

    def shapes(self):
        """HF name -> expected shape of every parameter."""
        h, d, f = self.hidden, self.head_dim, self.ffn
        s = {"model.embed_tokens.weight": [self.vocab, h], "model.norm.weight": [h]}
        for i in range(self.layers):
            p = "model.layers.%d." % i
            s[p + "self_attn.q_proj.weight"] = [self.heads * d, h]
            s[p + "self_attn.k_proj.weight"] = [self.kv_heads * d, h]
            s[p + "self_attn.v_proj.weight"] = [self.kv_heads * d, h]
            s[p + "self_attn.o_proj.weight"] = [h, self.heads * d]
            s[p + "mlp.gate_proj.weight"] = [f, h]
            s[p + "mlp.up_proj.weight"] = [f, h]
            s[p + "mlp.down_proj.weight"] = [h, f]
            s[p + "input_layernorm.weight"] = [h]
            s[p + "post_attention_layernorm.weight"] = [h]
            if self.qkv_bias:
                s[p + "self_attn.q_proj.bias"] = [self.heads * d]
                s[p + "self_attn.k_proj.bias"] = [self.kv_heads * d]
                s[p + "self_attn.v_proj.bias"] = [self.kv_heads * d]
            if self.o_bias:
                s[p + "self_attn.o_proj.bias"] = [h]
            if self.mlp_bias:
                for n in ("gate_proj", "up_proj"):
                    s[p + "mlp.%s.bias" % n] = [f]
                s[p + "mlp.down_proj.bias"] = [h]
        if not self.tied:
            s["lm_head.weight"] = [self.vocab, h]
        return s


def read_weights(model_dir):
    """model.safetensors, or the shards named by model.safetensors.index.json ({"weight_map": {name: file}})."""
    path = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(path) or not os.path.exists(index):
        return path, safetensors_read(path)
    try:
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
    except (OSError, ValueError, KeyError) as e:
        raise RefError("%s: cannot read the weight_map: %s" % (index, e))
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        part = safetensors_read(os.path.join(model_dir, shard))
        for name, arr in part.items():
            if name in tensors:
                raise RefError("%s: tensor %s is in two shards" % (index, name))
            tensors[name] = arr
    for name, shard in weight_map.items():
        if name not in tensors:
            raise RefError("%s: tensor %s is absent from shard %s" % (index, name, shard))
    return index, tensors


def load_model(model_dir):
    """Returns (Config, {name: float64 leaf tensor requiring grad})."""
    cfg = Config(os.path.join(model_dir, "config.json"))
    path, tensors = read_weights(model_dir)
    want = cfg.shapes()
    for name in tensors:
        # Old HF checkpoints carry the RoPE table as a buffer; it is recomputed, not a parameter.
        if name not in want and not name.endswith("rotary_emb.inv_freq"):
            raise RefError("%s: unexpected tensor %s" % (path, name))
    params = {}
    for name, shape in want.items():
        if name not in tensors:
            raise RefError("%s: tensor %s is missing" % (path, name))
        if list(tensors[name].shape) != shape:
            raise RefError("%s: tensor %s has shape %s, config says %s" % (path, name, list(tensors[name].shape),
                                                                           shape))
        params[name] = torch.tensor(tensors[name], dtype=torch.float64, requires_grad=True)
    return cfg, params


def read_ids(path, vocab):
    try:
        with open(path) as f:
            words = f.read().split()
    except OSError as e:
        raise RefError("%s: cannot read: %s" % (path, e.strerror))
    ids = []
    for k, w in enumerate(words):
        try:
            v = int(w)
        except ValueError:
            raise RefError("%s: token %d (%r) is not an integer" % (path, k, w))
        if not 0 <= v < vocab:
            raise RefError("%s: token %d is %d, outside the vocabulary [0, %d)" % (path, k, v, vocab))
        ids.append(v)
    if len(ids) < 2:
        raise RefError("%s: %d ids, need at least 2 for a next-token loss" % (path, len(ids)))
    return torch.tensor(ids, dtype=torch.long)


# ---------------------------------------------------------------------------------------------------------------
# The model, float64 throughout.

def rmsnorm(x, w, eps):
    # y = x / sqrt(mean(x^2) + eps) * w, over the last dimension
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w


def rope_inv_freq(d, theta, scaling):
    """inv_freq_i = theta^(-2i/d), then HF's rope_scaling: "linear" divides every frequency by factor (positions
    interpolated); "llama3" (Llama 3.1+) divides only the low frequencies (wavelength > original context /
    low_freq_factor), keeps the high ones (wavelength < original context / high_freq_factor) and blends linearly in
    1/wavelength between them."""
    i = torch.arange(0, d // 2, dtype=torch.float64)
    inv_freq = theta ** (-2.0 * i / d)
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if kind == "linear":
        inv_freq = inv_freq / float(scaling["factor"])
    elif kind == "llama3":
        factor = float(scaling["factor"])
        lo, hi = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        old = float(scaling["original_max_position_embeddings"])
        out = []
        for f in inv_freq.tolist():
            wavelen = 2 * math.pi / f
            if wavelen < old / hi:
                out.append(f)
            elif wavelen > old / lo:
                out.append(f / factor)
            else:
                smooth = (old / wavelen - lo) / (hi - lo)
                out.append((1 - smooth) * f / factor + smooth * f)
        inv_freq = torch.tensor(out, dtype=torch.float64)
    return inv_freq


def rope_tables(T, d, theta, scaling=None):
    # HF rotate-half: frequency i (0 <= i < d/2) rotates the pair (i, i + d/2).
    inv_freq = rope_inv_freq(d, theta, scaling)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]  # [T, d/2]
    angles = torch.cat([angles, angles], dim=-1)  # [T, d]: same angle at i and i + d/2
    return torch.cos(angles), torch.sin(angles)


def rope_apply(x, cos, sin):
    # x: [heads, T, d]. rotate_half(x) = (-x2, x1), so (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin).
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def attention(h, p, prefix, cfg, cos, sin):
    T = h.shape[0]
    d, nh, nkv = cfg.head_dim, cfg.heads, cfg.kv_heads
    q = linear(h, p, prefix + "self_attn.q_proj").view(T, nh, d).transpose(0, 1)  # [nh, T, d]
    k = linear(h, p, prefix + "self_attn.k_proj").view(T, nkv, d).transpose(0, 1)  # [nkv, T, d]
    v = linear(h, p, prefix + "self_attn.v_proj").view(T, nkv, d).transpose(0, 1)
    q = rope_apply(q, cos, sin)
    k = rope_apply(k, cos, sin)
    group = nh // nkv  # query head j reads kv head j // group
    kv_of = torch.arange(nh) // group
    k = k[kv_of]
    v = v[kv_of]
    scores = (q @ k.transpose(1, 2)) / math.sqrt(d)  # [nh, T, T]
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # key s > query t is masked
    scores = scores.masked_fill(future, float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v  # [nh, T, d]
    out = out.transpose(0, 1).reshape(T, nh * d)
    return linear(out, p, prefix + "self_attn.o_proj")


def linear(h, p, name):
    # nn.Linear: h W^T (+ b when the checkpoint has name.bias)
    y = h @ p[name + ".weight"].T
    return y + p[name + ".bias"] if name + ".bias" in p else y


def mlp(h, p, prefix):
    gate = linear(h, p, prefix + "mlp.gate_proj")
    up = linear(h, p, prefix + "mlp.up_proj")
    return linear(torch.nn.functional.silu(gate) * up, p, prefix + "mlp.down_proj")


def forward(cfg, p, ids):
    """Returns (logits [T, vocab], mean next-token cross-entropy over t = 0..T-2)."""
    T = ids.shape[0]
    cos, sin = rope_tables(T, cfg.head_dim, cfg.theta, cfg.rope_scaling)
    x = p["model.embed_tokens.weight"][ids]
    for i in range(cfg.layers):
        prefix = "model.layers.%d." % i
        x = x + attention(rmsnorm(x, p[prefix + "input_layernorm.weight"], cfg.eps), p, prefix, cfg, cos, sin)
        x = x + mlp(rmsnorm(x, p[prefix + "post_attention_layernorm.weight"], cfg.eps), p, prefix)
    x = rmsnorm(x, p["model.norm.weight"], cfg.eps)
    w_out = p["model.embed_tokens.weight"] if cfg.tied else p["lm_head.weight"]
    logits = x @ w_out.T
    # cross-entropy written out rather than F.cross_entropy, so the definition is visible: position t predicts
    # ids[t+1]. Slicing the per-position vectors, not the [T, vocab] logits, keeps the backward from
    # materialising another [T, vocab] zero-filled gradient.
    nxt = torch.cat([ids[1:], ids[:1]])  # the last entry is a placeholder, dropped below
    logz = torch.logsumexp(logits, dim=-1)
    target = logits.gather(1, nxt[:, None]).squeeze(1)
    loss = (logz - target)[:-1].mean()
    return logits, loss


def run(cfg, params, ids):
    """Forward + backward. Returns (logits float64 numpy, loss float, {name: grad float64 numpy})."""
    for t in params.values():
        t.grad = None
    logits, loss = forward(cfg, params, ids)
    loss.backward()
    grads = {n: t.grad.detach().numpy().copy() for n, t in params.items()}
    return logits.detach().numpy(), loss.item(), grads


# ---------------------------------------------------------------------------------------------------------------
# Self-checks of the reference itself, so a bug cannot hide on both sides.

def self_check(cfg, params, ids, grads, entries_per_tensor=2, seed=0, log=print):
    """Central finite differences of the float64 loss on a few entries of every parameter (the largest-|grad|
    entry and a random one), plus causality: changing the last id must not change earlier logits.
    Returns the number of failures."""
    rng = np.random.default_rng(seed)
    fails = 0
    worst = 0.0
    with torch.no_grad():
        base_logits, _ = forward(cfg, params, ids)
        for name, t in params.items():
            g = grads[name].reshape(-1)
            picks = [int(np.abs(g).argmax())] + [int(rng.integers(g.size)) for _ in range(entries_per_tensor - 1)]
            flat = t.view(-1)
            for k in picks:
                old = flat[k].item()
                eps = 1e-5 * max(1.0, abs(old))
                flat[k] = old + eps
                lp = forward(cfg, params, ids)[1].item()
                flat[k] = old - eps
                lm = forward(cfg, params, ids)[1].item()
                flat[k] = old
                fd = (lp - lm) / (2 * eps)
                # float64 loss rounding ~1e-15 * |loss| / eps plus O(eps^2) truncation: 1e-8 absolute is generous
                err = abs(fd - g[k])
                tol = 1e-8 + 1e-5 * abs(g[k])
                ok = err <= tol
                worst = max(worst, err / tol)
                if not ok:
                    fails += 1
                    log("  FD FAIL %s[%d]: autograd %.10e finite-diff %.10e" % (name, k, g[k], fd))
        ids2 = ids.clone()
        ids2[-1] = (ids2[-1] + 1) % cfg.vocab
        moved = (forward(cfg, params, ids2)[0][:-1] - base_logits[:-1]).abs().max().item()
        if moved > 1e-12:
            fails += 1
            log("  CAUSALITY FAIL: changing the last id moved earlier logits by %.3e" % moved)
    log("self-check: finite differences on %d entries x %d tensors, worst error %.2f of tolerance "
        "(1e-8 + 1e-5 |grad|); causality %s; %s"
        % (entries_per_tensor, len(params), worst, "ok" if moved <= 1e-12 else "BROKEN",
           "ok" if fails == 0 else "%d FAILURES" % fails))
    return fails


# ---------------------------------------------------------------------------------------------------------------
# Comparison with another implementation's outputs.

def compare(ref_loss, ref_logits, ref_grads, loss=None, logits=None, grads=None, label="", log=print, top=6):
    """Prints a report and returns the number of failures. Any of loss/logits/grads may be None (not compared)."""
    fails = 0
    tag = (label + ": ") if label else ""
    if loss is not None:
        d = abs(loss - ref_loss)
        ok = d <= LOSS_TOL_ABS and math.isfinite(loss)
        fails += not ok
        log("%sloss        ref %.8f  got %.8f  |diff| %.2e  (tol %.0e abs)  %s" % (tag, ref_loss, loss, d,
                                                                              LOSS_TOL_ABS, "ok" if ok else "FAIL"))
    if logits is not None:
        if list(logits.shape) != list(ref_logits.shape):
            log("%slogits      shape %s, expected %s  FAIL" % (tag, list(logits.shape), list(ref_logits.shape)))
            fails += 1
        else:
            diff = np.abs(logits.astype(np.float64) - ref_logits)
            d = float(np.nanmax(diff)) if np.all(np.isfinite(logits)) else float("inf")
            ok = d <= LOGITS_TOL_ABS
            fails += not ok
            t, v = np.unravel_index(int(np.nanargmax(diff)), diff.shape)
            log("%slogits      max |diff| %.2e at [t=%d, v=%d] (max |logit| %.2f)  (tol %.0e abs)  %s"
                % (tag, d, t, v, float(np.abs(ref_logits).max()), LOGITS_TOL_ABS, "ok" if ok else "FAIL"))
    if grads is not None:
        missing = sorted(set(ref_grads) - set(grads))
        extra = sorted(set(grads) - set(ref_grads))
        for n in missing:
            log("%sgrad %s missing  FAIL" % (tag, n))
        for n in extra:
            log("%sgrad %s is not a parameter  FAIL" % (tag, n))
        fails += len(missing) + len(extra)
        rows = []
        for n, r in ref_grads.items():
            if n not in grads:
                continue
            g = grads[n]
            if list(g.shape) != list(r.shape):
                rows.append((float("inf"), n, "shape %s, expected %s" % (list(g.shape), list(r.shape))))
                continue
            rn = float(np.linalg.norm(r))
            dn = float(np.linalg.norm(g.astype(np.float64) - r))
            rel = dn / rn if rn > 0 else (0.0 if dn == 0 else float("inf"))
            if not np.all(np.isfinite(g)):
                rel = float("inf")
            rows.append((rel, n, "|ref| %.3e  |diff| %.3e" % (rn, dn)))
        rows.sort(key=lambda r: -r[0])
        bad = [r for r in rows if not r[0] <= GRAD_TOL_REL]
        fails += len(bad)
        log("%sgradients   %d tensors, worst relative diff %.2e  (tol %.0e: norm(diff)/norm(ref))  %s"
            % (tag, len(rows), rows[0][0] if rows else 0.0, GRAD_TOL_REL, "ok" if not bad else
               "%d FAIL" % len(bad)))
        for rel, n, what in (bad if len(bad) > top else rows[:top]):
            log("%s    %-48s rel %.2e  %s%s" % (tag, n, rel, what, "" if rel <= GRAD_TOL_REL else "  FAIL"))
    return fails


def main(argv):
    ap = argparse.ArgumentParser(description="Float64 PyTorch Llama reference: loss, logits and gradients of an "
                                             "HF model dir; optionally compared with another implementation's.")
    ap.add_argument("--model", required=True, help="model dir with config.json and model.safetensors")
    ap.add_argument("--ids", required=True, help="file of whitespace-separated token ids")
    ap.add_argument("--compare-loss", type=float, help="loss to compare with (absolute tolerance %g)" % LOSS_TOL_ABS)
    ap.add_argument("--compare-logits", help=".npy [T, vocab] to compare with (max abs tolerance %g)"
                    % LOGITS_TOL_ABS)
    ap.add_argument("--compare-grads", help="safetensors of d(loss)/d(param) under HF names (relative tolerance %g)"
                    % GRAD_TOL_REL)
    ap.add_argument("--self-check", action="store_true", help="finite-difference and causality checks of the "
                                                              "reference itself (slow on big models)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: on a 2-core machine "
                                                             "shared with a build, more threads were slower)")
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, a.threads))
    try:
        t0 = time.time()
        cfg, params = load_model(a.model)
        ids = read_ids(a.ids, cfg.vocab)
        logits, loss, grads = run(cfg, params, ids)
        print("loss %.8f" % loss)
        print("reference: T=%d, %d layers, hidden %d, %.1f s" % (ids.shape[0], cfg.layers, cfg.hidden,
                                                                 time.time() - t0))
        fails = 0
        other_logits = other_grads = None
        if a.compare_logits:
            try:
                other_logits = np.load(a.compare_logits)
            except (OSError, ValueError) as e:
                raise RefError("%s: cannot load .npy: %s" % (a.compare_logits, e))
        if a.compare_grads:
            other_grads = safetensors_read(a.compare_grads)
        fails += compare(loss, logits, grads, a.compare_loss, other_logits, other_grads)
        if a.self_check:
            fails += self_check(cfg, params, ids, grads)
    except RefError as e:
        print("llama_ref.py: %s" % e, file=sys.stderr)
        return 1
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
