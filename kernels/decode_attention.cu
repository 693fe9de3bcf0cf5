// decode_attention.cu — attention of new token rows over a session's KV cache (host/kv_attention.c kv_attention is the
// CPU twin), and the RoPE + cache store that precedes it. Both read the position and the cache pointers from a
// kn_kv_step in device memory, so the host can change them between replays of one captured CUDA graph.
// Attention is split-K flash-decoding (docs/cuda.md, "Decode attention"): a block takes one KV head, the query heads
// of its GQA group (so K/V are read once for the group), one new row and one range of positions (a split); it
// streams the range through shared memory in tiles of 64 positions with 16-byte loads and keeps an online softmax
// (running max, sum, FP32 accumulators). With more than one split the partials go to a workspace and a combine pass
// rescales and adds them. The launch shape depends only on (T, max_ctx, SM count), never on the position, so a
// captured graph replays at every position: blocks past a row's last split exit at once.
// Quantized caches (q8, q4: host/kv_cache.h) are dequantized to FP16 as a tile is copied into shared memory, so the
// rest of the kernel is the FP16 one and no full-size FP16 copy of the cache ever exists; the store kernel
// quantizes each new row on its own (one thread per block of qb values), with host/kv_cache.c's float operations.
#include "kernels/common.cuh"

enum {
    DA_THREADS = 128,  // 4 warps
    DA_TILE = 64,      // positions per shared-memory tile: two per lane in the softmax step
    DA_MAX_G = 8,      // query heads per block; a larger GQA group takes several blocks (K/V read once per block)
    DA_MAX_HD = 128,   // keeps a tile of K and V (with padding) plus scores under 48 KiB of shared memory
    DA_PAIRS = DA_MAX_G * DA_MAX_HD / 2 / DA_THREADS,  // (head, half2 column) accumulators per thread
    DA_MAX_SPLITS = 64,   // splits per row at most (sizes the workspace)
    DA_SPLIT_MAX_T = 8,   // rows above this (prefill chunks) have parallelism enough: one split per row
    DA_WAVES = 4,         // blocks per SM the split count aims for
};
static_assert(DA_THREADS == 4 * 32 && DA_TILE == 2 * 32 && DA_MAX_G == 2 * 4, "the softmax step maps warps to heads");

__global__ void rope_kv_store_kernel(__half *qkv, const kn_kv_step *st, const float *inv_freq, int layer, int T,
                                     int nh, int nkv, int hd, int store) {
    int half = hd / 2, ld = (nh + 2 * nkv) * hd, row = nkv * hd;
    int64_t n_rot = (int64_t)T * (nh + nkv) * half, n_v = store ? (int64_t)T * row : 0;  // v: FP16 caches only
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
            if (h >= nh && store) {  // a key head: into an FP16 cache as well
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

// grid-stride over 2 T nkv*hd/qb blocks (k blocks, then v blocks): kv_quant_block of host/kv_cache.c on one block
template <int KT>
__global__ void kv_quant_store_kernel(const __half *qkv, const kn_kv_step *st, int layer, int T, int nh, int nkv,
                                      int hd, int qb) {
    int row = nkv * hd, nb = row / qb, ld = (nh + 2 * nkv) * hd;
    int64_t n = 2LL * T * nb;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
        int is_v = idx >= (int64_t)T * nb, b = (int)(idx % nb), t = (int)(idx / nb % T);
        const __half *x = qkv + (int64_t)t * ld + (int64_t)(nh + is_v * nkv) * hd + (int64_t)b * qb;
        int64_t prow = (int64_t)layer * st->n_ctx + st->pos + t;  // the position's row in the cache
        __half *sc = (__half *)(is_v ? st->vs : st->ks) + prow * nb + b;
        if (KT == KN_KV_Q8) {
            float amax = 0.0f;
            for (int i = 0; i < qb; i++) amax = fmaxf(amax, fabsf(h2f(x[i])));
            __half dh = f2h(amax / 127.0f);
            float d = h2f(dh), id = d != 0.0f ? 1.0f / d : 0.0f;
            int8_t *o = (int8_t *)(is_v ? st->v : st->k) + prow * row + (int64_t)b * qb;
            for (int i = 0; i < qb; i++) {
                float r = rintf(h2f(x[i]) * id);
                o[i] = (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : r);
            }
            *sc = dh;
        } else {
            float m = 0.0f;
            for (int i = 0; i < qb; i++)
                if (fabsf(h2f(x[i])) > fabsf(m)) m = h2f(x[i]);
            __half dh = f2h(m / -8.0f);
            float d = h2f(dh), id = d != 0.0f ? 1.0f / d : 0.0f;
            uint8_t *o = (uint8_t *)(is_v ? st->v : st->k) + (prow * row + (int64_t)b * qb) / 2;
            for (int i = 0; i < qb; i += 2) {
                float a = floorf(h2f(x[i]) * id + 8.5f), c = floorf(h2f(x[i + 1]) * id + 8.5f);
                int qa = a < 0.0f ? 0 : a > 15.0f ? 15 : (int)a, qc = c < 0.0f ? 0 : c > 15.0f ? 15 : (int)c;
                o[i / 2] = (uint8_t)(qa | qc << 4);
            }
            *sc = dh;
        }
    }
}

// Positions per split for a row over n positions when the launch has S splits: whole tiles, as few splits as the
// length needs (a short context uses fewer splits than the grid has; the rest exit).
__host__ __device__ __forceinline__ int da_split_len(int n, int S) {
    int per = (n + S - 1) / S;
    return (per + DA_TILE - 1) / DA_TILE * DA_TILE;
}

// Row stride of a K/V tile in shared memory, in 16-byte units: hd/8 rounded up to an odd number. Eight threads of
// a quarter-warp reading 16 bytes of eight consecutive rows then hit eight different 16-byte bank groups (and a
// warp reading one row's half2 columns hits 32 banks): no conflicts at head_dim 72 (9 units as is) nor at
// 64/80/96/128 (padded to 9/11/13/17).
__host__ __device__ __forceinline__ int da_stride16(int hd) { return hd / 8 | 1; }

static size_t da_smem_bytes(int hd, int gb) {
    return (size_t)2 * DA_TILE * da_stride16(hd) * 16 +
           sizeof(float) * ((size_t)gb * hd + (size_t)gb * (DA_TILE + 1) + 2 * gb);
}

// 8 FP16 keys held in a uint4 (a union, not a pointer cast: the CPU emulator's compiler enforces strict aliasing)
union da_h8 {
    uint4 u;
    __half2 h[4];
};

static __device__ __forceinline__ float dot8(const float *q, uint4 k) {
    da_h8 k8;
    k8.u = k;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 f = __half22float2(k8.h[i]);
        s = fmaf(q[2 * i], f.x, s);
        s = fmaf(q[2 * i + 1], f.y, s);
    }
    return s;
}

// 8 cached values of a quantized cache as 8 FP16 values (one uint4 of a shared-memory tile): q8 from a uint2 of
// int8, q4 from a uint32 of nibbles (element e at bits 4e), times the block's scale d
static __device__ __forceinline__ uint4 da_deq_q8(uint2 q, float d) {
    da_h8 o;
    unsigned w[2] = {q.x, q.y};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        unsigned x = w[i / 2] >> (16 * (i % 2));
        o.h[i] = __floats2half2_rn((float)(int8_t)(x & 0xff) * d, (float)(int8_t)((x >> 8) & 0xff) * d);
    }
    return o.u;
}

static __device__ __forceinline__ uint4 da_deq_q4(unsigned q, float d) {
    da_h8 o;
#pragma unroll
    for (int i = 0; i < 4; i++)
        o.h[i] = __floats2half2_rn((float)((int)((q >> (8 * i)) & 15) - 8) * d,
                                   (float)((int)((q >> (8 * i + 4)) & 15) - 8) * d);
    return o.u;
}

// grid (S splits, nkv * head chunks, T rows). part: [T][nh][S][hd] FP32 accumulators, then [T][nh][S] (max, sum).
// KT: the cache type (KN_KV_F16, KN_KV_Q8, KN_KV_Q4); qb: values per scale of a quantized cache.
template <int KT>
__global__ void __launch_bounds__(DA_THREADS)
    decode_split_kernel(__half *out, float *part, const __half *qkv, const kn_kv_step *st, int layer, int nh, int nkv,
                        int hd, int gb, int S, int qb) {
    extern __shared__ __align__(16) unsigned char da_smem[];
    int G = nh / nkv, chunks = (G + gb - 1) / gb;
    int kvh = blockIdx.y / chunks, g0 = blockIdx.y % chunks * gb, ng = min(gb, G - g0), h0 = kvh * G + g0;
    int t = blockIdx.z, n = st->pos + t + 1;
    int len = da_split_len(n, S), j_begin = blockIdx.x * len;
    if (j_begin >= n) return;  // past this row's last split (the grid is sized for max_ctx)
    int j_end = min(n, j_begin + len), nsplit = (n + len - 1) / len;
    int c8 = hd / 8, sw = da_stride16(hd), tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
    uint4 *ks = (uint4 *)da_smem, *vs = ks + DA_TILE * sw;
    float *qs = (float *)(vs + DA_TILE * sw);  // [ng][hd] the group's query rows
    float *ps = qs + gb * hd;                  // [ng][DA_TILE + 1] scores, then probabilities (odd stride)
    float *alpha = ps + gb * (DA_TILE + 1);    // [ng] this tile's rescale of the accumulators
    float *lsum = alpha + gb;                  // [ng] the final softmax sums
    int row16 = nkv * hd / 8, ld = (nh + 2 * nkv) * hd;
    size_t base = (size_t)layer * st->n_ctx * nkv * hd + (size_t)kvh * hd;
    const uint4 *K = (const uint4 *)((const __half *)st->k + base), *V = (const uint4 *)((const __half *)st->v + base);
    // quantized caches: 8 values = a uint2 (q8) or a uint32 (q4); row16 of those per position, nbr scales
    int nbr = KT == KN_KV_F16 ? 0 : nkv * hd / qb;
    const uint2 *K8 = (const uint2 *)((const int8_t *)st->k + base), *V8 = (const uint2 *)((const int8_t *)st->v + base);
    const unsigned *K4 = (const unsigned *)((const uint8_t *)st->k + base / 2);
    const unsigned *V4 = (const unsigned *)((const uint8_t *)st->v + base / 2);
    size_t sbase = KT == KN_KV_F16 ? 0 : ((size_t)layer * st->n_ctx * nbr + (size_t)kvh * hd / qb);
    const __half *KS = KT == KN_KV_F16 ? NULL : (const __half *)st->ks + sbase;
    const __half *VS = KT == KN_KV_F16 ? NULL : (const __half *)st->vs + sbase;
    const __half *q = qkv + (size_t)t * ld + (size_t)h0 * hd;
    float scale = 1.0f / sqrtf((float)hd);
    for (int i = tid; i < ng * hd; i += DA_THREADS) qs[i] = h2f(q[i]);  // a group's heads are adjacent in q

    float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};  // warp w: heads w and w + 4
    float acc[DA_PAIRS][2];
#pragma unroll
    for (int i = 0; i < DA_PAIRS; i++) acc[i][0] = acc[i][1] = 0.0f;
    int hp = hd / 2, npairs = ng * hp;

    for (int j0 = j_begin; j0 < j_end; j0 += DA_TILE) {
        int nt = min(DA_TILE, j_end - j0), nload = nt * c8;
        // 1. the tile of K and V: consecutive threads take consecutive 16 bytes of a row (coalesced); all loads are
        // issued before the stores so they are in flight together
        enum { LOADS = DA_TILE * DA_MAX_HD / 8 / DA_THREADS };
        if (KT == KN_KV_F16) {
            uint4 kr[LOADS] = {}, vr[LOADS] = {};
#pragma unroll
            for (int u = 0; u < LOADS; u++) {
                int i = tid + u * DA_THREADS, r = i / c8, c = i - r * c8;
                if (i < nload) {
                    kr[u] = K[(size_t)(j0 + r) * row16 + c];
                    vr[u] = V[(size_t)(j0 + r) * row16 + c];
                }
            }
#pragma unroll
            for (int u = 0; u < LOADS; u++) {
                int i = tid + u * DA_THREADS, r = i / c8, c = i - r * c8;
                if (i < nload) ks[r * sw + c] = kr[u], vs[r * sw + c] = vr[u];
            }
        } else {  // quantized: the raw bytes and scales first (all in flight), then dequantized into the tile
            uint2 kr[LOADS] = {}, vr[LOADS] = {};
            float kd[LOADS] = {}, vd[LOADS] = {};
#pragma unroll
            for (int u = 0; u < LOADS; u++) {
                int i = tid + u * DA_THREADS, r = i / c8, c = i - r * c8;
                if (i < nload) {
                    size_t e = (size_t)(j0 + r) * row16 + c, sidx = (size_t)(j0 + r) * nbr + 8 * c / qb;
                    if (KT == KN_KV_Q8) kr[u] = K8[e], vr[u] = V8[e];
                    else kr[u].x = K4[e], vr[u].x = V4[e];
                    kd[u] = h2f(KS[sidx]), vd[u] = h2f(VS[sidx]);
                }
            }
#pragma unroll
            for (int u = 0; u < LOADS; u++) {
                int i = tid + u * DA_THREADS, r = i / c8, c = i - r * c8;
                if (i < nload) {
                    ks[r * sw + c] = KT == KN_KV_Q8 ? da_deq_q8(kr[u], kd[u]) : da_deq_q4(kr[u].x, kd[u]);
                    vs[r * sw + c] = KT == KN_KV_Q8 ? da_deq_q8(vr[u], vd[u]) : da_deq_q4(vr[u].x, vd[u]);
                }
            }
        }
        __syncthreads();
        // 2. scores: thread (j, gs) takes position j for heads gs, gs + 2, ... (q reads are warp-wide broadcasts)
        {
            int j = tid % DA_TILE, gs = tid / DA_TILE;
            float s[DA_MAX_G / 2] = {0.0f, 0.0f, 0.0f, 0.0f};
            if (j < nt) {
                for (int c = 0; c < c8; c++) {
                    uint4 k = ks[j * sw + c];
#pragma unroll
                    for (int i = 0; i < DA_MAX_G / 2; i++)
                        if (gs + 2 * i < ng) s[i] += dot8(qs + (gs + 2 * i) * hd + 8 * c, k);
                }
            }
#pragma unroll
            for (int i = 0; i < DA_MAX_G / 2; i++)
                if (gs + 2 * i < ng) ps[(gs + 2 * i) * (DA_TILE + 1) + j] = j < nt ? s[i] * scale : -INFINITY;
        }
        __syncthreads();
        // 3. online softmax: warp w owns heads w and w + 4 for the whole range (max and sum stay in its registers)
#pragma unroll
        for (int i = 0; i < 2; i++) {
            int g = w + 4 * i;
            if (g < ng) {
                float *pg = ps + g * (DA_TILE + 1);
                float a = pg[lane], b = pg[lane + 32];
                float mn = fmaxf(m_run[i], warp_max(fmaxf(a, b)));  // finite: the tile has a valid position
                float ea = expf(a - mn), eb = expf(b - mn), al = expf(m_run[i] - mn);
                pg[lane] = ea, pg[lane + 32] = eb;
                l_run[i] = l_run[i] * al + warp_sum(ea + eb);
                m_run[i] = mn;
                if (lane == 0) alpha[g] = al;
            }
        }
        __syncthreads();
        // 4. acc = acc * alpha + P V: thread owns (head, half2 column) pairs; a warp reads one V row's consecutive
        // columns (32 banks) and a broadcast probability
#pragma unroll
        for (int u = 0; u < DA_PAIRS; u++) {
            int p = tid + u * DA_THREADS;
            if (p < npairs) {
                int g = p / hp, dp = p - g * hp;
                const float *pg = ps + g * (DA_TILE + 1);
                const __half2 *vc = (const __half2 *)vs + dp;
                float al = alpha[g], a0 = acc[u][0] * al, a1 = acc[u][1] * al;
                for (int j = 0; j < nt; j++) {
                    float2 v = __half22float2(vc[j * sw * 4]);
                    a0 = fmaf(pg[j], v.x, a0);
                    a1 = fmaf(pg[j], v.y, a1);
                }
                acc[u][0] = a0, acc[u][1] = a1;
            }
        }
        __syncthreads();  // the next tile overwrites ks, vs, ps and alpha
    }

    size_t ml_base = (size_t)gridDim.z * nh * S * hd;  // the (max, sum) pairs follow the accumulators
#pragma unroll
    for (int i = 0; i < 2; i++) {
        int g = w + 4 * i;
        if (g < ng && lane == 0) {
            lsum[g] = l_run[i];
            if (nsplit > 1) {
                size_t r = ((size_t)t * nh + h0 + g) * S + blockIdx.x;
                part[ml_base + 2 * r] = m_run[i], part[ml_base + 2 * r + 1] = l_run[i];
            }
        }
    }
    __syncthreads();
#pragma unroll
    for (int u = 0; u < DA_PAIRS; u++) {
        int p = tid + u * DA_THREADS;
        if (p < npairs) {
            int g = p / hp, dp = p - g * hp;
            if (nsplit == 1) {  // the whole row in this block: the output at once
                float inv = 1.0f / lsum[g];
                __half2 *o = (__half2 *)(out + (size_t)t * nh * hd + (size_t)(h0 + g) * hd) + dp;
                *o = __floats2half2_rn(acc[u][0] * inv, acc[u][1] * inv);
            } else {
                size_t r = ((size_t)t * nh + h0 + g) * S + blockIdx.x;
                part[r * hd + 2 * dp] = acc[u][0], part[r * hd + 2 * dp + 1] = acc[u][1];
            }
        }
    }
}

// grid (nh, T): out = sum over splits of acc_s e^(m_s - M) / sum of l_s e^(m_s - M). No shared memory, no
// barriers: each thread reads the few (max, sum) pairs itself.
__global__ void decode_combine_kernel(__half *out, const float *part, const kn_kv_step *st, int nh, int hd, int S) {
    int h = blockIdx.x, t = blockIdx.y, n = st->pos + t + 1;
    int len = da_split_len(n, S), ns = (n + len - 1) / len;
    if (ns == 1) return;  // the split kernel wrote this row
    size_t r0 = ((size_t)t * nh + h) * S;
    const float *ml = part + (size_t)gridDim.y * nh * S * hd + 2 * r0;
    float M = -INFINITY, L = 0.0f;
    for (int s = 0; s < ns; s++) M = fmaxf(M, ml[2 * s]);
    for (int s = 0; s < ns; s++) L += ml[2 * s + 1] * expf(ml[2 * s] - M);
    float inv = 1.0f / L;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float o = 0.0f;
        for (int s = 0; s < ns; s++) o = fmaf(part[(r0 + s) * hd + d], expf(ml[2 * s] - M), o);
        out[(size_t)t * nh * hd + (size_t)h * hd + d] = f2h(o * inv);
    }
}

static int da_sm_count(void) {
    int dev = 0, sms = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || sms < 1)
        sms = 1;
    return sms;
}

// Splits per row for a launch of T rows: enough blocks for DA_WAVES per SM, at most one per tile of max_ctx.
static int da_splits(int T, int nh, int nkv, int max_ctx, int sms) {
    if (T > DA_SPLIT_MAX_T) return 1;
    int G = nh / nkv, gb = G < DA_MAX_G ? G : DA_MAX_G, blocks = nkv * ((G + gb - 1) / gb) * T;
    int s = (DA_WAVES * sms + blocks - 1) / blocks, tiles = (max_ctx + DA_TILE - 1) / DA_TILE;
    if (s > tiles) s = tiles;
    if (s > DA_MAX_SPLITS) s = DA_MAX_SPLITS;
    return s < 1 ? 1 : s;
}

extern "C" int kn_decode_attention_check(int hd, int max_ctx) {
    if (hd < 8 || hd % 8 || hd > DA_MAX_HD)
        return kn_fail("decode attention: head_dim %d must be a multiple of 8 and at most %d", hd, DA_MAX_HD);
    if (max_ctx < 1) return kn_fail("decode attention: a context of %d positions", max_ctx);
    return 0;
}

extern "C" size_t kn_decode_attention_workspace(int T, int nh, int hd) {
    int rows = T < DA_SPLIT_MAX_T ? T : DA_SPLIT_MAX_T;  // more rows never split
    if (rows < 1) return 0;
    return sizeof(float) * (size_t)rows * nh * DA_MAX_SPLITS * ((size_t)hd + 2);
}

extern "C" void kn_kv_quant_store(const kn_half *qkv, const kn_kv_step *st, int layer, int T, int nh, int nkv, int hd,
                                  int kv_type, int qb, cudaStream_t stream) {
    if (T <= 0) return;
    int64_t n = 2LL * T * (nkv * hd / qb);
    if (kv_type == KN_KV_Q8)
        kv_quant_store_kernel<KN_KV_Q8><<<kn_blocks(n, 128), 128, 0, stream>>>((const __half *)qkv, st, layer, T, nh,
                                                                               nkv, hd, qb);
    else
        kv_quant_store_kernel<KN_KV_Q4><<<kn_blocks(n, 128), 128, 0, stream>>>((const __half *)qkv, st, layer, T, nh,
                                                                               nkv, hd, qb);
    KN_CHECK_LAUNCH();
}

extern "C" void kn_rope_kv_store(kn_half *qkv, const kn_kv_step *st, const float *inv_freq, int layer, int T, int nh,
                                 int nkv, int hd, int kv_type, int qb, cudaStream_t stream) {
    if (T <= 0) return;
    int f16 = kv_type == KN_KV_F16;  // else: rotate only (no V copy), then quantize k and v from qkv
    int64_t n = (int64_t)T * (nh + nkv) * (hd / 2) + (f16 ? (int64_t)T * nkv * hd : 0);
    rope_kv_store_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>((__half *)qkv, st, inv_freq, layer, T, nh, nkv, hd,
                                                                f16);
    KN_CHECK_LAUNCH();
    if (!f16) kn_kv_quant_store(qkv, st, layer, T, nh, nkv, hd, kv_type, qb, stream);
}

extern "C" void kn_decode_attention(kn_half *out, const kn_half *qkv, const kn_kv_step *st, int layer, int T, int nh,
                                    int nkv, int hd, int max_ctx, int kv_type, int qb, void *workspace,
                                    cudaStream_t stream) {
    if (T <= 0) return;
    int G = nh / nkv, gb = G < DA_MAX_G ? G : DA_MAX_G, chunks = (G + gb - 1) / gb;
    int S = da_splits(T, nh, nkv, max_ctx, da_sm_count());
    dim3 grid(S, nkv * chunks, T);
    size_t smem = da_smem_bytes(hd, gb);
    if (kv_type == KN_KV_Q8)
        decode_split_kernel<KN_KV_Q8><<<grid, DA_THREADS, smem, stream>>>(
            (__half *)out, (float *)workspace, (const __half *)qkv, st, layer, nh, nkv, hd, gb, S, qb);
    else if (kv_type == KN_KV_Q4)
        decode_split_kernel<KN_KV_Q4><<<grid, DA_THREADS, smem, stream>>>(
            (__half *)out, (float *)workspace, (const __half *)qkv, st, layer, nh, nkv, hd, gb, S, qb);
    else
        decode_split_kernel<KN_KV_F16><<<grid, DA_THREADS, smem, stream>>>(
            (__half *)out, (float *)workspace, (const __half *)qkv, st, layer, nh, nkv, hd, gb, S, 1);
    KN_CHECK_LAUNCH();
    if (S > 1) {
        decode_combine_kernel<<<dim3(nh, T), (hd + 31) / 32 * 32, 0, stream>>>((__half *)out, (const float *)workspace,
                                                                                st, nh, hd, S);
        KN_CHECK_LAUNCH();
    }
}
