// attention.cu — the C API of causal GQA flash attention (host/cpu/attention.c is the twin): validation, the
// choice between the tensor-core and the FP32-FMA path (kn_tensor_cores()), and the backward's preprocessing
// D = rowsum(dout * out). Both paths: tiled online softmax that saves the logsumexp and never holds T x T;
// backward recomputes probabilities tile by tile in two deterministic kernels (dK/dV per key tile, looping over
// the group's query heads; dQ per query tile), so no float atomics are needed.
#include <math.h>
#include <string.h>

#include "kernels/attention.cuh"

static int attn_hd_ok(int hd) { return hd == 64 || hd == 72 || hd == 80 || hd == 96 || hd == 128; }

extern "C" int kn_attention_check(int hd, int nh, int nkv, int ldq, int ldkv) {
    if (!attn_hd_ok(hd)) return kn_fail("attention: head_dim %d is not supported (64, 72, 80, 96 or 128)", hd);
    if (nh <= 0 || nkv <= 0 || nh % nkv)
        return kn_fail("attention: %d key/value heads must divide %d query heads", nkv, nh);
    if (ldq % 2 || ldkv % 2 || ldq < nh * hd || ldkv < nkv * hd)
        return kn_fail("attention: row strides %d (q) and %d (k, v) must be even and cover %d and %d columns", ldq,
                       ldkv, nh * hd, nkv * hd);
    return 0;
}

static int attn_misaligned(const void *a, const void *b, const void *c, const void *d, const void *e) {
    uintptr_t x = (uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d | (uintptr_t)e;
    return (x & 3) != 0;  // the kernels move pairs of halves
}

static attn_params attn_params_make(int T, int nh, int nkv, int hd, int ldq, int ldkv) {
    attn_params p;
    memset(&p, 0, sizeof p);
    p.T = T, p.nh = nh, p.nkv = nkv, p.group = nh / nkv;
    p.ldq = ldq, p.ldkv = ldkv, p.ldo = nh * hd;
    p.scale = (float)(1.0 / sqrt((double)hd));
    return p;
}

extern "C" int kn_attention_forward(kn_half *out, float *lse, const kn_half *q, const kn_half *k, const kn_half *v,
                                    int T, int nh, int nkv, int hd, int ldq, int ldkv, cudaStream_t stream) {
    if (kn_attention_check(hd, nh, nkv, ldq, ldkv)) return -1;
    if (T <= 0) return 0;
    if (attn_misaligned(out, q, k, v, NULL)) return kn_fail("attention: pointers must be 4-byte aligned");
    attn_params p = attn_params_make(T, nh, nkv, hd, ldq, ldkv);
    p.q = (const __half *)q, p.k = (const __half *)k, p.v = (const __half *)v;
    p.out = (__half *)out, p.lse = lse;
    if (kn_tensor_cores()) attn_tc_forward(p, hd, stream);
    else attn_fma_forward(p, hd, stream);
    return 0;
}

// D[h, t] = sum_c dout[t, h*hd + c] * out[t, h*hd + c]: one warp per (t, h), lanes over c, fixed shuffle tree.
__global__ void attn_bwd_prep_kernel(float *D, const __half *dout, const __half *o, int T, int nh, int hd) {
    int64_t w = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (w >= (int64_t)T * nh) return;  // whole warps leave together
    int t = (int)(w / nh), h = (int)(w % nh);
    const __half *a = dout + (int64_t)t * nh * hd + (int64_t)h * hd, *b = o + (int64_t)t * nh * hd + (int64_t)h * hd;
    float s = 0.0f;
    for (int c = lane; c < hd; c += 32) s = fmaf(h2f(a[c]), h2f(b[c]), s);
    s = warp_sum(s);
    if (lane == 0) D[(int64_t)h * T + t] = s;
}

extern "C" int kn_attention_backward(kn_half *dq, kn_half *dk, kn_half *dv, const kn_half *dout, const kn_half *q,
                                     const kn_half *k, const kn_half *v, const kn_half *out, const float *lse, int T,
                                     int nh, int nkv, int hd, int ldq, int ldkv, void *workspace,
                                     cudaStream_t stream) {
    if (kn_attention_check(hd, nh, nkv, ldq, ldkv)) return -1;
    if (T <= 0) return 0;
    if (attn_misaligned(dq, dk, dv, dout, out) || attn_misaligned(q, k, v, NULL, NULL))
        return kn_fail("attention: pointers must be 4-byte aligned");
    attn_params p = attn_params_make(T, nh, nkv, hd, ldq, ldkv);
    p.q = (const __half *)q, p.k = (const __half *)k, p.v = (const __half *)v;
    p.o = (const __half *)out, p.dout = (const __half *)dout;
    p.dq = (__half *)dq, p.dk = (__half *)dk, p.dv = (__half *)dv;
    p.lse_in = lse;
    float *D = (float *)workspace;
    p.D = D;
    int64_t warps = (int64_t)T * nh;
    attn_bwd_prep_kernel<<<(unsigned)((warps * 32 + 127) / 128), 128, 0, stream>>>(D, p.dout, p.o, T, nh, hd);
    KN_CHECK_LAUNCH();
    if (kn_tensor_cores()) attn_tc_backward(p, hd, stream);
    else attn_fma_backward(p, hd, stream);
    return 0;
}
