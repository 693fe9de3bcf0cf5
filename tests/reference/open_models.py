#!/usr/bin/python3
# Random-weight model directories with the exact published configs of the open code models SmallCoder loads
# (issue 17), written the way they ship: config.json as published, BF16/F16/F32 safetensors, one file or shards +
# model.safetensors.index.json, generation_config.json. Layers may be cut (widths never); `vocab` cuts the
# vocabulary in a variant whose name says so (the full vocabularies make the embedding and lm_head dominate).
#
#   /usr/bin/python3 tests/reference/open_models.py --family NAME --out DIR [--layers N] [--vocab V]
#       [--dtype BF16|F16|F32] [--shards N] [--seed S]
import argparse
import json
import os
import struct
import sys

import numpy as np

# config.json of each family as published on the Hugging Face hub (fields that do not change the math, such as
# transformers_version, are kept too: a loader must ignore them). generation_config.json's eos ids where they
# differ from config.json's.
FAMILIES = {
    "deepseek-coder-1.3b": {
        "architectures": ["LlamaForCausalLM"], "bos_token_id": 32013, "eos_token_id": 32014, "hidden_act": "silu",
        "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 5504, "max_position_embeddings": 16384,
        "model_type": "llama", "num_attention_heads": 16, "num_hidden_layers": 24, "num_key_value_heads": 16,
        "pretraining_tp": 1, "rms_norm_eps": 1e-06, "rope_scaling": {"factor": 4.0, "type": "linear"},
        "rope_theta": 100000, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.33.1", "use_cache": True, "vocab_size": 32256},
    "qwen2.5-coder-0.5b": {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
        "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24, "model_type": "qwen2",
        "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "transformers_version": "4.44.0", "use_cache": True, "use_sliding_window": False, "vocab_size": 151936},
    "qwen2.5-coder-1.5b": {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02,
        "intermediate_size": 8960, "max_position_embeddings": 32768, "max_window_layers": 28, "model_type": "qwen2",
        "num_attention_heads": 12, "num_hidden_layers": 28, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "transformers_version": "4.44.0", "use_cache": True, "use_sliding_window": False, "vocab_size": 151936},
    "smollm2-135m": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 0,
        "eos_token_id": 0, "hidden_act": "silu", "hidden_size": 576, "initializer_range": 0.041666666666666664,
        "intermediate_size": 1536, "is_llama_config": True, "max_position_embeddings": 8192, "mlp_bias": False,
        "model_type": "llama", "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_interleaved": False, "rope_scaling": None,
        "rope_theta": 100000, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "transformers_version": "4.40.1", "use_cache": True, "vocab_size": 49152},
    "smollm2-360m": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 0,
        "eos_token_id": 0, "hidden_act": "silu", "hidden_size": 960, "initializer_range": 0.02,
        "intermediate_size": 2560, "is_llama_config": True, "max_position_embeddings": 8192, "mlp_bias": False,
        "model_type": "llama", "num_attention_heads": 15, "num_hidden_layers": 32, "num_key_value_heads": 5,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_interleaved": False, "rope_scaling": None,
        "rope_theta": 100000, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "transformers_version": "4.40.1", "use_cache": True, "vocab_size": 49152},
    "tinyllama-1.1b": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 1, "eos_token_id": 2,
        "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 5632,
        "max_position_embeddings": 2048, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 22,
        "num_key_value_heads": 4, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
        "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.35.0", "use_cache": False, "vocab_size": 32000},
    "llama-3.2-1b": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048,
        "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": False,
        "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "transformers_version": "4.45.0.dev0", "use_cache": True, "vocab_size": 128256},
}

# generation_config.json as published (Llama-3.2-1B-Instruct ends on any of three ids)
GENERATION = {
    "llama-3.2-1b": {"bos_token_id": 128000, "do_sample": True, "eos_token_id": [128001, 128008, 128009],
                     "temperature": 0.6, "top_p": 0.9},
    "qwen2.5-coder-0.5b": {"bos_token_id": 151643, "eos_token_id": 151643, "max_new_tokens": 2048},
    "deepseek-coder-1.3b": {"bos_token_id": 32013, "eos_token_id": 32014},
}

_NP = {"F32": "<f4", "F16": "<f2"}


def encode(arr, dtype):
    a = np.ascontiguousarray(arr, dtype=np.float32)
    if dtype == "BF16":  # round to nearest even on the top 16 bits, as torch does
        u = a.view(np.uint32)  # finite values: the sum stays below 2^32
        return ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype("<u2").tobytes()
    return a.astype(_NP[dtype]).tobytes()


def write_safetensors(path, tensors, dtype):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        b = encode(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return offset


def family_config(family, layers=None, vocab=None):
    cfg = json.loads(json.dumps(FAMILIES[family]))
    if layers:
        cfg["num_hidden_layers"] = layers
    if vocab:  # the cut-vocabulary variant: special ids move inside it
        cfg["vocab_size"] = vocab
        for k in ("bos_token_id", "eos_token_id"):
            cfg[k] = vocab - 1 - (k == "bos_token_id")
    return cfg


def random_weights(cfg, seed):
    """HF-named tensors: matrices N(0, 0.02), norms 1 + 0.3 N(0, 1) and biases 0.3 N(0, 1) (so both matter)."""
    rng = np.random.default_rng(seed)
    h, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    d = cfg.get("head_dim", h // nh)
    qwen = cfg["model_type"] == "qwen2"
    attn_bias, mlp_bias = cfg.get("attention_bias", False), cfg.get("mlp_bias", False)

    def mat(r, c, std=0.02):
        m = rng.standard_normal((r, c), dtype=np.float32)
        m *= std
        return m

    def vec(n, base):
        return (base + 0.3 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    t = {"model.embed_tokens.weight": mat(v, h, 0.05), "model.norm.weight": vec(h, 1.0)}
    if not cfg.get("tie_word_embeddings", False):
        t["lm_head.weight"] = mat(v, h, 0.05)
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        t[p + "input_layernorm.weight"] = vec(h, 1.0)
        t[p + "post_attention_layernorm.weight"] = vec(h, 1.0)
        t[p + "self_attn.q_proj.weight"] = mat(nh * d, h, 0.05)
        t[p + "self_attn.k_proj.weight"] = mat(nkv * d, h, 0.05)
        t[p + "self_attn.v_proj.weight"] = mat(nkv * d, h)
        t[p + "self_attn.o_proj.weight"] = mat(h, nh * d)
        t[p + "mlp.gate_proj.weight"] = mat(f, h)
        t[p + "mlp.up_proj.weight"] = mat(f, h)
        t[p + "mlp.down_proj.weight"] = mat(h, f)
        if qwen or attn_bias:
            t[p + "self_attn.q_proj.bias"] = vec(nh * d, 0.0)
            t[p + "self_attn.k_proj.bias"] = vec(nkv * d, 0.0)
            t[p + "self_attn.v_proj.bias"] = vec(nkv * d, 0.0)
        if attn_bias:
            t[p + "self_attn.o_proj.bias"] = vec(h, 0.0)
        if mlp_bias:
            t[p + "mlp.gate_proj.bias"] = vec(f, 0.0)
            t[p + "mlp.up_proj.bias"] = vec(f, 0.0)
            t[p + "mlp.down_proj.bias"] = vec(h, 0.0)
    return t


def write_model(out, cfg, tensors, dtype="BF16", shards=1, generation=None):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if generation:
        with open(os.path.join(out, "generation_config.json"), "w") as f:
            json.dump(generation, f, indent=2)
    if shards <= 1:
        write_safetensors(os.path.join(out, "model.safetensors"), tensors, dtype)
        return
    # HF's save_pretrained order: tensors split in name order into shards of about equal size
    names = sorted(tensors)
    per = -(-len(names) // shards)
    weight_map, total = {}, 0
    for k in range(shards):
        part = names[k * per:(k + 1) * per]
        fname = "model-%05d-of-%05d.safetensors" % (k + 1, shards)
        total += write_safetensors(os.path.join(out, fname), {n: tensors[n] for n in part}, dtype)
        for n in part:
            weight_map[n] = fname
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def make(family, out, layers=None, vocab=None, dtype="BF16", shards=1, seed=0):
    cfg = family_config(family, layers, vocab)
    gen = GENERATION.get(family)
    if gen and vocab:  # the cut variant keeps the shape of the end-id list, moved inside the vocabulary
        gen = dict(gen)
        ids = gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]]
        moved = [vocab - 1 - k for k in range(len(ids))]
        gen["eos_token_id"] = moved if isinstance(GENERATION[family]["eos_token_id"], list) else moved[0]
        gen["bos_token_id"] = cfg["bos_token_id"]
    write_model(out, cfg, random_weights(cfg, seed), dtype, shards, gen)
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--family", required=True, choices=sorted(FAMILIES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--vocab", type=int, help="cut the vocabulary (a clearly named variant, not the family)")
    ap.add_argument("--dtype", default="BF16", choices=["BF16", "F16", "F32"])
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    make(a.family, a.out, a.layers, a.vocab, a.dtype, a.shards, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
