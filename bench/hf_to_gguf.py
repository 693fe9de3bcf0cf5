#!/usr/bin/python3
"""hf_to_gguf.py MODEL_DIR OUT.gguf f32|f16 — writes a SmallCoder/Llama model directory as a llama.cpp GGUF,
for the CPU benchmark against llama-bench. It uses llama.cpp's own gguf-py writer (PYTHONPATH=<llama.cpp>/gguf-py)
so the file is exactly what llama.cpp expects. No tokenizer is attached (tokenizer.ggml.model = "none"):
llama-bench feeds random ids. Q and K rows are permuted from HF's rotate-half pairing to llama.cpp's interleaved
RoPE pairing, as llama.cpp's own converter does, so the GGUF computes the same function."""
import json
import struct
import sys

import numpy as np

import gguf  # from llama.cpp's gguf-py

TYPES = {"F32": np.float32, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[base + b:base + e], dtype=TYPES[t["dtype"]]).reshape(t["shape"])
    return out


def permute(w, n_head):
    # HF rotate-half (i, i+d/2) -> interleaved (2i, 2i+1), per head
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    model_dir, out, ftype = sys.argv[1], sys.argv[2], sys.argv[3]
    cfg = json.load(open(f"{model_dir}/config.json"))
    w = read_safetensors(f"{model_dir}/model.safetensors")
    dtype = np.float32 if ftype == "f32" else np.float16
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", cfg["hidden_size"] // nh)
    g = gguf.GGUFWriter(out, "llama")
    g.add_context_length(cfg["max_position_embeddings"])
    g.add_embedding_length(cfg["hidden_size"])
    g.add_block_count(cfg["num_hidden_layers"])
    g.add_feed_forward_length(cfg["intermediate_size"])
    g.add_head_count(nh)
    g.add_head_count_kv(nkv)
    g.add_key_length(hd)
    g.add_value_length(hd)
    g.add_rope_dimension_count(hd)
    g.add_rope_freq_base(cfg["rope_theta"])
    g.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    g.add_vocab_size(cfg["vocab_size"])
    g.add_file_type(gguf.LlamaFileType.ALL_F32 if ftype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    g.add_tokenizer_model("none")

    def add(name, arr, keep_f32=False):
        g.add_tensor(name, np.ascontiguousarray(arr.astype(np.float32 if keep_f32 else dtype)))

    add("token_embd.weight", w["model.embed_tokens.weight"])
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        add(f"blk.{i}.attn_norm.weight", w[p + "input_layernorm.weight"], True)
        add(f"blk.{i}.attn_q.weight", permute(w[p + "self_attn.q_proj.weight"], nh))
        add(f"blk.{i}.attn_k.weight", permute(w[p + "self_attn.k_proj.weight"], nkv))
        add(f"blk.{i}.attn_v.weight", w[p + "self_attn.v_proj.weight"])
        add(f"blk.{i}.attn_output.weight", w[p + "self_attn.o_proj.weight"])
        add(f"blk.{i}.ffn_norm.weight", w[p + "post_attention_layernorm.weight"], True)
        add(f"blk.{i}.ffn_gate.weight", w[p + "mlp.gate_proj.weight"])
        add(f"blk.{i}.ffn_up.weight", w[p + "mlp.up_proj.weight"])
        add(f"blk.{i}.ffn_down.weight", w[p + "mlp.down_proj.weight"])
    add("output_norm.weight", w["model.norm.weight"], True)
    if "lm_head.weight" in w:
        add("output.weight", w["lm_head.weight"])
    g.write_header_to_file()
    g.write_kv_data_to_file()
    g.write_tensors_to_file()
    g.close()


if __name__ == "__main__":
    main()
