#!/usr/bin/python3
# teacher_hf.py — `smallcoder teacher` for teachers our runtime cannot load: runs any PyTorch causal LM over the
# token shards (*.tok) and writes the same .kd files (byte layout: distill/kd_format.h; writer: kd_write.c), with
# the same windows (--context/--overlap), top-k order and header, so `smallcoder train --teacher-logits` takes them.
#
#   /usr/bin/python3 distill/teacher_hf.py --model DIR_OR_HF_ID --data SHARD_DIR --out KD_DIR [--top-k 32]
#       [--temperature 1] [--context N] [--overlap N] [--split train|val|all] [--name NAME]
#       [--model-class MODULE:FACTORY] [--device cpu|cuda] [--dtype float32|float64|bfloat16|float16]
#
# The model: HF transformers' AutoModelForCausalLM.from_pretrained(--model) when transformers is importable, or
# --model-class MODULE:FACTORY (MODULE a dotted module name or a path to a .py file): FACTORY(model_dir) returns a
# callable taking a LongTensor [1, T] of ids and returning logits [1, T, V] ([T, V], a tuple whose first element
# is the logits, or an object with .logits also do). zstd: the `zstandard` module (Debian python3-zstandard) when
# importable, else the `zstd` command. Exit status: 0 done, 1 bad input or error, 2 usage, 77 torch/numpy missing.
import argparse
import importlib
import importlib.util
import math
import os
import struct
import subprocess
import sys
import time

try:
    import numpy as np
    import torch
except ImportError as e:
    print("teacher_hf.py: needs torch and numpy (Debian python3-torch, python3-numpy): %s" % e, file=sys.stderr)
    sys.exit(77)

try:
    import zstandard
except ImportError:
    zstandard = None
if os.environ.get("TEACHER_HF_ZSTD") == "cli":  # the tests exercise the fallback this way
    zstandard = None

SHARD_MAGIC = b"SCTOK\0\0\0"
SHARD_HEADER_SIZE = 64
KD_MAGIC = b"SCKD\0\0\0\0"
KD_VERSION = 1
KD_HEADER_SIZE = 160
KD_NAME_SIZE = 64
KD_MAX_K = 1024
INDEX_ENTRY = 32
ZSTD_LEVEL = 9  # kd_write.c's default


class KdError(Exception):
    pass


# ---- checksums (host/checksum.c): CRC-32C (Castagnoli, reflected) and MurmurHash64A ----
def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


_CRC = _crc_table()


def crc32c(data, crc=0):
    """CRC-32C continuing from crc (chains like crc32c_update); a byte loop, for headers and indexes."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


_CRC_NP = None


def crc32c_np(data):
    """CRC-32C of a frame (MBs): slicing-by-8 as host/checksum.c, 8 bytes per Python step."""
    global _CRC_NP
    if _CRC_NP is None:
        t = [list(_CRC)]
        for k in range(1, 8):
            t.append([(t[k - 1][i] >> 8) ^ _CRC[t[k - 1][i] & 0xFF] for i in range(256)])
        _CRC_NP = t
    t0, t1, t2, t3, t4, t5, t6, t7 = _CRC_NP
    mv = memoryview(data).cast("B")
    n = len(mv)
    crc = 0xFFFFFFFF
    words = np.frombuffer(mv[: n - n % 8], dtype="<u8").tolist()
    for v in words:
        v ^= crc
        crc = (t7[v & 0xFF] ^ t6[(v >> 8) & 0xFF] ^ t5[(v >> 16) & 0xFF] ^ t4[(v >> 24) & 0xFF] ^
               t3[(v >> 32) & 0xFF] ^ t2[(v >> 40) & 0xFF] ^ t1[(v >> 48) & 0xFF] ^ t0[v >> 56])
    for b in mv[n - n % 8:]:
        crc = (crc >> 8) ^ t0[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


def hash64(data, seed):
    M, R, MASK = 0xC6A4A7935BD1E995, 47, (1 << 64) - 1
    n = len(data)
    h = (seed ^ (n * M)) & MASK
    for i in range(0, n - n % 8, 8):
        k = (int.from_bytes(data[i:i + 8], "little") * M) & MASK
        k ^= k >> R
        k = (k * M) & MASK
        h = ((h ^ k) * M) & MASK
    tail = data[n - n % 8:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * M) & MASK
    h ^= h >> R
    h = (h * M) & MASK
    h ^= h >> R
    return h


# ---- zstd ----
def zstd_decompress(blob, size):
    if zstandard is not None:
        return zstandard.ZstdDecompressor().decompress(blob, max_output_size=size)
    return subprocess.run(["zstd", "-d", "-q", "-c"], input=blob, stdout=subprocess.PIPE, check=True).stdout


def zstd_compress(raw, level):
    if zstandard is not None:
        return zstandard.ZstdCompressor(level=level, write_content_size=True).compress(raw)
    return subprocess.run(["zstd", "-%d" % level, "-q", "-c"], input=raw, stdout=subprocess.PIPE, check=True).stdout


# ---- shards (data/shard.h) ----
class Shard:
    def __init__(self, path):
        self.path = path
        try:
            with open(path, "rb") as f:
                self.blob = f.read()
        except OSError as e:
            raise KdError("%s: cannot read: %s" % (path, e.strerror))
        b = self.blob
        if len(b) < SHARD_HEADER_SIZE or b[:8] != SHARD_MAGIC:
            raise KdError("%s: not a token shard (bad magic or shorter than the 64-byte header)" % path)
        (self.version, self.dtype, self.vocab_size, self.frame_count, self.token_count, self.doc_count,
         self.tokenizer_hash, self.index_offset, self.frame_tokens, self.header_crc) = struct.unpack_from(
            "<IIIIQQQQII", b, 8)
        if self.dtype not in (2, 4):
            raise KdError("%s: dtype %d, expected 2 or 4" % (path, self.dtype))
        if self.index_offset + INDEX_ENTRY * self.frame_count != len(b):
            raise KdError("%s: truncated or padded: index at %d + %d entries, file is %d bytes"
                          % (path, self.index_offset, self.frame_count, len(b)))
        index = b[self.index_offset:]
        if crc32c(index, crc32c(b[:60])) != self.header_crc:
            raise KdError("%s: header/index CRC mismatch" % path)
        self.frames = [struct.unpack_from("<QQII", index, i * INDEX_ENTRY) for i in range(self.frame_count)]
        self.header_hash = hash64(b[:SHARD_HEADER_SIZE], 0x5C6BD15711A7)

    def tokens(self):
        """The whole stream as an int64 numpy array (frames checked against their CRCs)."""
        parts = []
        for i, (off, first, csize, count) in enumerate(self.frames):
            raw = zstd_decompress(self.blob[off:off + csize], count * self.dtype)
            if len(raw) != count * self.dtype or crc32c_np(raw) != struct.unpack_from(
                    "<I", self.blob, self.index_offset + i * INDEX_ENTRY + 24)[0]:
                raise KdError("%s: frame %d is corrupt (size or CRC)" % (self.path, i))
            parts.append(np.frombuffer(raw, dtype="<u2" if self.dtype == 2 else "<u4").astype(np.int64))
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        if ids.size != self.token_count:
            raise KdError("%s: frames hold %d tokens, header says %d" % (self.path, ids.size, self.token_count))
        return ids


# ---- .kd writer (distill/kd_write.c) ----
def shuffle(raw, es):
    """Byte-shuffle a plane of es-byte values: byte 0 of all values, then byte 1, ..."""
    return np.frombuffer(raw, np.uint8).reshape(-1, es).T.tobytes()


def kd_frame(ids, vals, lse, id_bytes):
    """Raw (unshuffled, for the CRC) and shuffled bytes of one frame: ids [n, k], vals [n, k] FP32, lse [n]."""
    ids_raw = ids.astype("<u2" if id_bytes == 2 else "<u4").tobytes()
    val_raw = vals.astype(np.float32).astype("<f2").tobytes()  # IEEE round to nearest even, as float_to_half
    lse_raw = lse.astype("<f4").tobytes()
    return ids_raw + val_raw + lse_raw, shuffle(ids_raw, id_bytes) + shuffle(val_raw, 2) + shuffle(lse_raw, 4)


def kd_header_bytes(h, index):
    b = bytearray(KD_HEADER_SIZE)
    b[0:8] = KD_MAGIC
    struct.pack_into("<IIfIIIQQQQIIII", b, 8, KD_VERSION, h["k"], h["temperature"], h["id_bytes"], h["vocab_size"],
                     h["frame_count"], h["token_count"], h["tokenizer_hash"], h["shard_header_hash"],
                     h["index_offset"], h["frame_tokens"], h["context"], h["overlap"], 0)
    name = h["teacher"].encode("utf-8")[:KD_NAME_SIZE]
    b[80:80 + len(name)] = name
    struct.pack_into("<I", b, 156, crc32c(index, crc32c(bytes(b[:156]))))
    return bytes(b)


def topk_rows(logits, k, temperature):
    """logits [n, V] (any float dtype) -> ids [n, k] descending (ties: lower id first), vals [n, k] and lse [n] of
    logits / temperature, in FP32 like kd_topk_rows (lse accumulated in float64)."""
    inv = torch.tensor(1.0, dtype=torch.float32) / torch.tensor(temperature, dtype=torch.float32)
    z = logits.to(torch.float32) * inv  # l * (1.0f / temp) in FP32, as kd_topk_rows
    # stable sort on -z keeps equal values in id order, as the C insertion does
    order = torch.sort(-z, dim=-1, stable=True).indices[:, :k]
    vals = torch.gather(z, 1, order)
    lse = torch.logsumexp(z.to(torch.float64), dim=-1).to(torch.float32)
    return order.numpy(), vals.numpy(), lse.numpy()


def kd_write_shard(model_fn, shard, kd_path, k, temperature, context, overlap, name, device, progress):
    """Runs the teacher over the shard in windows exactly like kd_teacher_write_shard and writes kd_path
    (temp name + rename)."""
    ids = shard.tokens()
    N = shard.token_count
    entries_ids, entries_vals, entries_lse = [], [], []
    w0, V = 0, None
    with torch.no_grad():
        while w0 < N:
            n = min(N - w0, context)
            keep0 = overlap if w0 else 0
            if keep0 >= n:
                break
            x = torch.from_numpy(ids[w0:w0 + n]).to(device)[None, :]
            logits = model_fn(x)
            if V is None:
                V = logits.shape[-1]
                if shard.vocab_size > V:
                    raise KdError("%s: shard vocabulary %d is larger than the teacher's %d"
                                  % (shard.path, shard.vocab_size, V))
                if k > V:
                    raise KdError("--top-k %d: must be between 1 and the teacher's vocabulary size %d" % (k, V))
            ti, tv, tl = topk_rows(logits[keep0:n].detach().cpu(), k, temperature)
            entries_ids.append(ti), entries_vals.append(tv), entries_lse.append(tl)
            progress(w0 + n)
            if w0 + n >= N:
                break
            w0 += context - overlap
    if V is None:  # an empty shard: the vocabulary is the shard's
        V = shard.vocab_size
    all_ids = np.concatenate(entries_ids) if entries_ids else np.zeros((0, k), np.int64)
    all_vals = np.concatenate(entries_vals) if entries_vals else np.zeros((0, k), np.float32)
    all_lse = np.concatenate(entries_lse) if entries_lse else np.zeros(0, np.float32)
    if all_ids.shape[0] != N:
        raise KdError("%s: %d entries computed for %d tokens" % (shard.path, all_ids.shape[0], N))
    h = dict(k=k, temperature=temperature, id_bytes=2 if V <= 65536 else 4, vocab_size=V,
             frame_count=shard.frame_count, token_count=N, tokenizer_hash=shard.tokenizer_hash,
             shard_header_hash=shard.header_hash, frame_tokens=shard.frame_tokens, context=context,
             overlap=overlap, teacher=name)
    tmp = "%s.tmp.%d" % (kd_path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(bytes(KD_HEADER_SIZE))
            pos, index = KD_HEADER_SIZE, bytearray()
            for (off, first, csize, count) in shard.frames:
                sl = slice(first, first + count)
                raw, shuf = kd_frame(all_ids[sl], all_vals[sl], all_lse[sl], h["id_bytes"])
                c = zstd_compress(shuf, ZSTD_LEVEL)
                f.write(c)
                index += struct.pack("<QQIIII", pos, first, len(c), count, crc32c_np(raw), 0)
                pos += len(c)
            h["index_offset"] = pos
            f.write(index)
            f.seek(0)
            f.write(kd_header_bytes(h, bytes(index)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, kd_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return pos + len(index)


def kd_done(kd_path, shard, k, temperature, context, overlap, name):
    """Whether kd_path is a finished .kd of this shard with these parameters (header fields and CRC)."""
    try:
        with open(kd_path, "rb") as f:
            b = f.read()
    except OSError:
        return False
    if len(b) < KD_HEADER_SIZE or b[:8] != KD_MAGIC:
        return False
    (ver, kk, temp, idb, V, fc, tc, th, shh, ioff, ft, ctx, ov, _) = struct.unpack_from("<IIfIIIQQQQIIII", b, 8)
    stored = b[80:144].rstrip(b"\0").decode("utf-8", "replace")
    if ioff + INDEX_ENTRY * fc != len(b) or crc32c(b[ioff:], crc32c(b[:156])) != struct.unpack_from("<I", b, 156)[0]:
        return False
    return (ver == KD_VERSION and kk == k and temp == np.float32(temperature) and fc == shard.frame_count and
            tc == shard.token_count and th == shard.tokenizer_hash and shh == shard.header_hash and
            ctx == context and ov == overlap and stored == name[:KD_NAME_SIZE])


# ---- models ----
def load_factory(spec):
    mod, sep, attr = spec.rpartition(":")
    if not sep or not mod or not attr:
        raise KdError("--model-class %r: expected MODULE:FACTORY (a dotted module or a .py path)" % spec)
    if mod.endswith(".py") or os.sep in mod:
        s = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(mod))[0], mod)
        if s is None or not os.path.exists(mod):
            raise KdError("--model-class: cannot load %s" % mod)
        sys.path.insert(0, os.path.dirname(os.path.abspath(mod)))
        m = importlib.util.module_from_spec(s)
        s.loader.exec_module(m)
    else:
        m = importlib.import_module(mod)
    if not hasattr(m, attr):
        raise KdError("--model-class: %s has no %s" % (mod, attr))
    return getattr(m, attr)


def as_logits(out):
    if hasattr(out, "logits"):
        out = out.logits
    elif isinstance(out, (tuple, list)):
        out = out[0]
    if out.dim() == 3:
        out = out[0]
    return out


def load_model(args):
    dtype = getattr(torch, args.dtype)
    if args.model_class:
        model = load_factory(args.model_class)(args.model)
        if isinstance(model, torch.nn.Module):
            model = model.to(args.device).eval()
        return lambda x: as_logits(model(x))
    try:
        from transformers import AutoModelForCausalLM
    except ImportError:
        raise KdError("transformers is not importable: give the model as --model-class MODULE:FACTORY")
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype).to(args.device).eval()
    return lambda x: as_logits(model(input_ids=x, use_cache=False))


def model_context(args):
    """--context, else the model's max_position_embeddings from config.json."""
    if args.context > 0:
        return args.context
    import json
    try:
        with open(os.path.join(args.model, "config.json")) as f:
            n = int(json.load(f).get("max_position_embeddings") or 0)
    except (OSError, ValueError):
        n = 0
    if n <= 0:
        raise KdError("%s: no config.json with max_position_embeddings: give --context" % args.model)
    return n


def main():
    ap = argparse.ArgumentParser(description="Writes .kd teacher logits (smallcoder's format) for token shards "
                                             "from a PyTorch causal LM.")
    ap.add_argument("--model", "-m", required=True, help="model directory (or HF hub id with transformers)")
    ap.add_argument("--data", "-d", required=True, help="directory of token shards (*.tok)")
    ap.add_argument("--out", "-o", required=True, help="directory for the .kd files (created)")
    ap.add_argument("--top-k", "-k", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--context", type=int, default=0, help="tokens per window (0 = max_position_embeddings)")
    ap.add_argument("--overlap", type=int, default=-1, help="context-only tokens per window (-1 = context/4)")
    ap.add_argument("--split", default="train", choices=["train", "val", "all"])
    ap.add_argument("--name", help="teacher name in the headers (default: the model directory's name)")
    ap.add_argument("--model-class", help="MODULE:FACTORY building the model from --model (see the file's top)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16", "float16"])
    ap.add_argument("--quiet", "-q", action="store_true")
    args = ap.parse_args()
    if not (args.temperature > 0) or not math.isfinite(args.temperature):
        ap.error("--temperature must be positive, got %g" % args.temperature)
    if not 1 <= args.top_k <= KD_MAX_K:
        ap.error("--top-k %d: must be between 1 and %d" % (args.top_k, KD_MAX_K))
    try:
        context = model_context(args)
        overlap = context // 4 if args.overlap < 0 else args.overlap
        if overlap >= context:
            raise KdError("--overlap %d must be smaller than the window (--context %d)" % (overlap, context))
        name = args.name or os.path.basename(os.path.normpath(args.model))
        try:
            names = sorted(f for f in os.listdir(args.data) if f.endswith(".tok") and
                           (args.split == "all" or f.startswith(args.split + "-")))
        except OSError as e:
            raise KdError("%s: cannot list: %s" % (args.data, e.strerror))
        if not names:
            raise KdError("%s: no %s*.tok shards" % (args.data, "" if args.split == "all" else args.split + "-"))
        os.makedirs(args.out, exist_ok=True)
        temperature = float(np.float32(args.temperature))
        todo = []
        for nm in names:
            sh = Shard(os.path.join(args.data, nm))
            kd_path = os.path.join(args.out, nm[:-4] + ".kd")
            if not kd_done(kd_path, sh, args.top_k, temperature, context, overlap, name):
                todo.append((sh, kd_path))
        model_fn = load_model(args)
        total = sum(s.token_count for s, _ in todo)
        t0, done, nbytes = time.time(), 0, 0
        if not args.quiet:
            print("teacher %s: %d shard(s), %d already done; top-%d, temperature %g, windows of %d tokens "
                  "overlapping by %d" % (name, len(names), len(names) - len(todo), args.top_k, temperature,
                                         context, overlap), file=sys.stderr)
        for sh, kd_path in todo:
            def progress(d, base=done):
                if not args.quiet and sys.stderr.isatty():
                    el = max(time.time() - t0, 1e-9)
                    print("\rteacher_hf: %5.1f%%  %d/%d tokens  %.0f tok/s" % (100.0 * (base + d) / max(total, 1),
                          base + d, total, (base + d) / el), end="", file=sys.stderr)
            nbytes += kd_write_shard(model_fn, sh, kd_path, args.top_k, temperature, context, overlap, name,
                                     args.device, progress)
            done += sh.token_count
        if not args.quiet and todo:
            print(file=sys.stderr)
        print("teacher_hf: wrote %d .kd file(s) (%d skipped): %d tokens, %d bytes, %.1f bytes/token at k=%d"
              % (len(todo), len(names) - len(todo), done, nbytes, nbytes / done if done else 0.0, args.top_k))
    except (KdError, subprocess.CalledProcessError) as e:
        print("teacher_hf.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
