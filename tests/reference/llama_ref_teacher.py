# llama_ref_teacher.py — a plain-PyTorch teacher for distill/teacher_hf.py --model-class (no transformers):
# tests/reference/llama_ref.py's float64 Llama forward over our safetensors, as FACTORY(model_dir) -> callable.
#   /usr/bin/python3 distill/teacher_hf.py --model-class tests/reference/llama_ref_teacher.py:load --model DIR ...
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402  (exits 77 itself when torch/numpy are missing)


def load(model_dir):
    cfg, params = llama_ref.load_model(model_dir)
    for p in params.values():
        p.requires_grad_(False)
    return lambda ids: llama_ref.forward(cfg, params, ids[0])[0]
