// decode_attention.cu — attention of new token rows over a session's KV cache (infer/kv_cache.c is the CPU twin),
// and the RoPE + cache store that precedes it. Both read the position and the cache pointers from a kn_kv_step in
// device memory, so the host can change them between replays of one captured CUDA graph.
// Attention: one block per (head, new row). Each thread scores its share of the cached positions (a whole dot
// product of head_dim per position, so no per-position reduction), the scores sit in shared memory (max_ctx
// floats), then a block-wide max and sum, then thread d sums p_j v_j[d] over the positions (coalesced across d).
// Simple and exact to the CPU's order of operations per score; a split over positions (flash-decoding) would use
// more SMs at long contexts on a large GPU, and is the next step if a GPU measurement asks for it.
#include "kernels/common.cuh"

enum { ATT_THREADS = 128, ATT_MAX_HD = 256, ATT_SMEM_LIMIT = 48 * 1024 };

__global__ void rope_kv_store_kernel(__half *qkv, const kn_kv_step *st, const float *inv_freq, int layer, int T,
                                     int nh, int nkv, int hd) {
    int half = hd / 2, ld = (nh + 2 * nkv) * hd, row = nkv * hd;
    int64_t n_rot = (int64_t)T * (nh + nkv) * half, n_v = (int64_t)T * row;
    int pos = st->pos;
    __half *K = (__half *)st->k + (int64_t)layer * st->n_ctx * row;
    __half *V = (__half *)st->v + (int64_t)layer * st->n_ctx * row;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n_rot + n_v;
         idx += (int64_t)gridDim.x * blockDim.x) {
        if (idx < n_rot) {
            int i = (int)(idx % half), h = (int)(idx / half % (nh + nkv)), t = (int)(idx / half / (nh + nkv));
            float ang = inv_freq[i] * (float)(pos + t);  // float32 product, as rope.cu and the CPU
            float s, c;
            sincosf(ang, &s, &c);
            __half *x1 = qkv + (int64_t)t * ld + (int64_t)h * hd + i, *x2 = x1 + half;
            float a = h2f(*x1), b = h2f(*x2);
            __half r1 = f2h(a * c - b * s), r2 = f2h(b * c + a * s);
            *x1 = r1, *x2 = r2;
            if (h >= nh) {  // a key head: into the cache as well
                __half *kr = K + (int64_t)(pos + t) * row + (int64_t)(h - nh) * hd + i;
                kr[0] = r1, kr[half] = r2;
            }
        } else {
            int64_t j = idx - n_rot;
            int t = (int)(j / row), e = (int)(j % row);
            V[(int64_t)(pos + t) * row + e] = qkv[(int64_t)t * ld + (int64_t)(nh + nkv) * hd + e];
        }
    }
}

__global__ void __launch_bounds__(ATT_THREADS)
    decode_attention_kernel(__half *out, const __half *qkv, const kn_kv_step *st, int layer, int nh, int nkv, int hd) {
    extern __shared__ float att_smem[];
    float *qs = att_smem, *sc = att_smem + ATT_MAX_HD;
    int h = blockIdx.x, t = blockIdx.y, kvh = h / (nh / nkv);
    int ld = (nh + 2 * nkv) * hd, row = nkv * hd, n = st->pos + t + 1;
    const __half *K = (const __half *)st->k + (int64_t)layer * st->n_ctx * row + (int64_t)kvh * hd;
    const __half *V = (const __half *)st->v + (int64_t)layer * st->n_ctx * row + (int64_t)kvh * hd;
    const __half *q = qkv + (int64_t)t * ld + (int64_t)h * hd;
    float scale = 1.0f / sqrtf((float)hd);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) qs[d] = h2f(q[d]);
    __syncthreads();
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const __half2 *kr = (const __half2 *)(K + (int64_t)j * row);
        float s = 0.0f;
        for (int d = 0; d < hd / 2; d++) {
            float2 k2 = __half22float2(kr[d]);
            s = fmaf(qs[2 * d], k2.x, s);
            s = fmaf(qs[2 * d + 1], k2.y, s);
        }
        s *= scale;
        sc[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_max(mx);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float e = expf(sc[j] - mx);
        sc[j] = e;
        sum += e;
    }
    sum = block_sum(sum);  // its barriers also publish sc[] to every thread
    float inv = 1.0f / sum;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float o = 0.0f;
        for (int j = 0; j < n; j++) o = fmaf(sc[j], h2f(V[(int64_t)j * row + d]), o);
        out[(int64_t)t * nh * hd + (int64_t)h * hd + d] = f2h(o * inv);
    }
}

static size_t att_smem_bytes(int max_ctx) { return sizeof(float) * ((size_t)ATT_MAX_HD + (size_t)max_ctx); }

extern "C" int kn_decode_attention_check(int hd, int max_ctx) {
    if (hd < 2 || hd % 2 || hd > ATT_MAX_HD)
        return kn_fail("decode attention: head_dim %d must be even and <= %d", hd, ATT_MAX_HD);
    if (att_smem_bytes(max_ctx) > ATT_SMEM_LIMIT)
        return kn_fail("decode attention: a context of %d positions needs %zu bytes of shared memory for the scores "
                       "(limit %d: at most %d positions)",
                       max_ctx, att_smem_bytes(max_ctx), ATT_SMEM_LIMIT, (int)(ATT_SMEM_LIMIT / 4 - ATT_MAX_HD));
    return 0;
}

extern "C" void kn_rope_kv_store(kn_half *qkv, const kn_kv_step *st, const float *inv_freq, int layer, int T, int nh,
                                 int nkv, int hd, cudaStream_t stream) {
    if (T <= 0) return;
    int64_t n = (int64_t)T * (nh + nkv) * (hd / 2) + (int64_t)T * nkv * hd;
    rope_kv_store_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>((__half *)qkv, st, inv_freq, layer, T, nh, nkv, hd);
    KN_CHECK_LAUNCH();
}

extern "C" void kn_decode_attention(kn_half *out, const kn_half *qkv, const kn_kv_step *st, int layer, int T, int nh,
                                    int nkv, int hd, int max_ctx, cudaStream_t stream) {
    if (T <= 0) return;
    decode_attention_kernel<<<dim3(nh, T), ATT_THREADS, att_smem_bytes(max_ctx), stream>>>((__half *)out,
                                                                                    (const __half *)qkv, st, layer,
                                                                                    nh, nkv, hd);
    KN_CHECK_LAUNCH();
}
