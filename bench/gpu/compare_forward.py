#!/usr/bin/env python3
"""compare_forward.py — `smallcoder forward --device cuda` against `--device cpu` for bench/gpu-suite: the loss
lines, the logits (.npy) and every gradient tensor (F32 safetensors), with the tolerances of tests/gpu/test_model.c
(mean loss 2e-3 absolute, logits 1e-2 and each gradient 2e-2 relative L2).
Usage: compare_forward.py CPU_DIR CUDA_DIR   (each holding loss.txt, logits.npy, grads.safetensors)"""
import json
import struct
import sys

import numpy as np


def read_loss(path):
    for line in open(path):
        if line.startswith("loss "):
            return float(line.split()[1])
    raise SystemExit("%s: no 'loss' line" % path)


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + a:8 + n + b], dtype="<f4").reshape(t["shape"])
    return out


def relerr(a, ref):
    a, ref = a.astype(np.float64), ref.astype(np.float64)
    if not np.all(np.isfinite(a)):
        return float("inf")
    den = np.linalg.norm(ref)
    return float(np.linalg.norm(a - ref) / den) if den > 0 else float(np.linalg.norm(a))


def main():
    cpu, gpu = sys.argv[1], sys.argv[2]
    fails = 0
    lc, lg = read_loss(cpu + "/loss.txt"), read_loss(gpu + "/loss.txt")
    ok = abs(lc - lg) <= 2e-3
    fails += not ok
    print("%-4s loss cpu %.6f cuda %.6f (|diff| %.2g, tol 2e-3)" % ("ok" if ok else "FAIL", lc, lg, abs(lc - lg)))
    e = relerr(np.load(gpu + "/logits.npy"), np.load(cpu + "/logits.npy"))
    fails += not e <= 1e-2
    print("%-4s logits relative L2 %.3g (tol 1e-2)" % ("ok" if e <= 1e-2 else "FAIL", e))
    gc, gg = read_safetensors(cpu + "/grads.safetensors"), read_safetensors(gpu + "/grads.safetensors")
    worst, worst_name = 0.0, ""
    for name in sorted(gc):
        e = relerr(gg[name], gc[name])
        if not e <= worst:
            worst, worst_name = e, name
        if not e <= 2e-2:
            fails += 1
            print("FAIL grad %s relative L2 %.3g (tol 2e-2)" % (name, e))
    print("%-4s worst gradient %s relative L2 %.3g (tol 2e-2)" % ("ok" if worst <= 2e-2 else "FAIL", worst_name, worst))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
