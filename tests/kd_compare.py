#!/usr/bin/python3
# kd_compare.py A.kd B.kd — checks that two .kd files (distill/kd_format.h) hold the same teacher logits: every
# header field equal but the teacher name and index_offset (compressed sizes may differ), every frame's CRC, and
# per position the same top-k ids (a swap is accepted only between logits equal within FP16 rounding, i.e. a
# tie the two teachers' float arithmetic may order differently), logits within 1 FP16 ulp, lse within 1e-4.
# Independent of teacher_hf.py's writer: its own parser and unshuffle. Exit 0 same, 1 different, 77 no numpy/zstd.
import struct
import subprocess
import sys
import zlib  # noqa: F401

try:
    import numpy as np
except ImportError:
    sys.exit(77)


def crc32c(data):
    crc = 0xFFFFFFFF
    tbl = crc32c.tbl
    for b in data:
        crc = (crc >> 8) ^ tbl[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


crc32c.tbl = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    crc32c.tbl.append(c)


def unzstd(blob):
    return subprocess.run(["zstd", "-d", "-q", "-c"], input=blob, stdout=subprocess.PIPE, check=True).stdout


def read_kd(path):
    b = open(path, "rb").read()
    assert b[:8] == b"SCKD\0\0\0\0", "%s: bad magic" % path
    f = struct.unpack_from("<IIfIIIQQQQIIII", b, 8)
    names = "version k temperature id_bytes vocab_size frame_count token_count tokenizer_hash shard_header_hash " \
            "index_offset frame_tokens context overlap reserved".split()
    h = dict(zip(names, f))
    h["teacher"] = b[80:144].rstrip(b"\0").decode()
    io, fc, k, idb = h["index_offset"], h["frame_count"], h["k"], h["id_bytes"]
    assert io + 32 * fc == len(b), "%s: size" % path
    assert crc32c(b[:156] + b[io:]) == struct.unpack_from("<I", b, 156)[0], "%s: header CRC" % path
    ids, vals, lse, index = [], [], [], []
    for i in range(fc):
        off, first, csize, n, crc, _ = struct.unpack_from("<QQIIII", b, io + 32 * i)
        index.append((first, n))
        shuf = np.frombuffer(unzstd(b[off:off + csize]), np.uint8)
        nk = n * k
        assert shuf.size == nk * (idb + 2) + 4 * n, "%s: frame %d size" % (path, i)
        planes, p = [], 0
        for cnt, es in ((nk, idb), (nk, 2), (n, 4)):
            planes.append(shuf[p:p + cnt * es].reshape(es, cnt).T.copy().tobytes())
            p += cnt * es
        raw = b"".join(planes)
        assert crc32c(raw) == crc, "%s: frame %d CRC" % (path, i)
        ids.append(np.frombuffer(planes[0], "<u2" if idb == 2 else "<u4").reshape(n, k).astype(np.int64))
        vals.append(np.frombuffer(planes[1], "<f2").reshape(n, k).astype(np.float64))
        lse.append(np.frombuffer(planes[2], "<f4").astype(np.float64))
    return h, index, np.concatenate(ids), np.concatenate(vals), np.concatenate(lse)


def main():
    ha, ia, ida, va, la = read_kd(sys.argv[1])
    hb, ib, idb, vb, lb = read_kd(sys.argv[2])
    fails = []
    for key in ha:
        if key not in ("teacher", "index_offset") and ha[key] != hb[key]:
            fails.append("header %s: %r vs %r" % (key, ha[key], hb[key]))
    if ia != ib:
        fails.append("frame index (first_token, token_count) differs")
    if fails:
        print("\n".join(fails))
        return 1
    ulp = np.maximum(np.abs(va), np.abs(vb))
    tol = np.where(ulp < 2.0 ** -14, 2.0 ** -24, 2.0 ** (np.floor(np.log2(np.maximum(ulp, 2.0 ** -14))) - 10)) * 1.01
    dv = np.abs(va - vb)
    bad_v = dv > tol
    # ids: equal, or a swap among logits tied within FP16 rounding (checked via the other file's value there)
    diff = ida != idb
    tied = np.zeros_like(diff)
    for r, c in zip(*np.nonzero(diff)):
        # the id b has at rank c must sit in a's row at a rank whose value is within tolerance of b's value
        row_a = ida[r]
        j = np.nonzero(row_a == idb[r, c])[0]
        near = abs(va[r, c] - vb[r, c]) <= tol[r, c]
        if j.size:
            near = near and abs(va[r, j[0]] - vb[r, c]) <= 2 * tol[r, c]
        else:  # fell off a's top-k: must tie with a's last value
            near = near and abs(va[r, -1] - vb[r, c]) <= 2 * tol[r, c]
        tied[r, c] = near
    bad_id = diff & ~tied
    dl = np.abs(la - lb)
    print("kd_compare: %d positions x k=%d; ids equal at %d/%d entries (%d tie swaps); max |dlogit| %.3g "
          "(%d over 1 FP16 ulp); max |dlse| %.3g" % (ida.shape[0], ida.shape[1], (~diff).sum(), diff.size,
                                                    (diff & tied).sum(), dv.max() if dv.size else 0,
                                                    bad_v.sum(), dl.max() if dl.size else 0))
    ok = not bad_v.any() and not bad_id.any() and (dl <= 1e-4 * np.maximum(1, np.abs(la))).all()
    if not ok:
        for r, c in list(zip(*np.nonzero(bad_id | bad_v)))[:5]:
            print("  position %d rank %d: id %d/%d logit %.6g/%.6g" % (r, c, ida[r, c], idb[r, c], va[r, c],
                                                                      vb[r, c]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
