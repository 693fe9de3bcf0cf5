// attention_fma.cu — the attention path for GPUs without usable tensor cores (MX450, GTX 16xx): FP16 tiles in
// shared memory read as half2, FP32 FMA for every product. 128 threads; a block row (or key, in dK/dV) is owned by
// 4 consecutive lanes: lane quarter qd takes keys qd, qd+4, ... of a tile for the scores and output columns qd,
// qd+4, ... for the accumulators, so a row's softmax statistics need only two shuffles. Shared rows are padded to
// an odd number of 32-bit words, so rows read in parallel fall in different banks.
#include "kernels/attention.cuh"

enum { FMA_THREADS = 128, FMA_BM = 32, FMA_BN = 32 };

template <int HD>
struct fma_shape {
    static constexpr int H2 = HD / 2;   // half2 per head row
    static constexpr int LD2 = H2 + 1;  // padded row, in half2 (odd for every supported HD)
    static constexpr int LD = 2 * LD2;  // the same row, in halves
    static constexpr int NC = HD / 4;   // accumulator columns per thread
};

template <int H2>
__device__ __forceinline__ float dot_h2(const __half2 *a, const __half2 *b) {
    float s = 0.0f;
#pragma unroll 8
    for (int i = 0; i < H2; i++) {
        float2 x = __half22float2(a[i]), y = __half22float2(b[i]);
        s = fmaf(x.x, y.x, s);
        s = fmaf(x.y, y.y, s);
    }
    return s;
}

// Rows [0, nrows) of a tile: row rr comes from src + row_off(rr) (or zeros when row_off < 0), HD halves each.
template <int HD, typename RowOff>
__device__ __forceinline__ void fma_load_rows(__half2 (*dst)[fma_shape<HD>::LD2], int nrows, const __half *src,
                                              RowOff row_off) {
    constexpr int H2 = fma_shape<HD>::H2;
    for (int idx = threadIdx.x; idx < nrows * H2; idx += FMA_THREADS) {
        int rr = idx / H2, c2 = idx % H2;
        int64_t off = row_off(rr);
        dst[rr][c2] = off >= 0 ? reinterpret_cast<const __half2 *>(src + off)[c2] : __float2half2_rn(0.0f);
    }
}

template <int HD>
__global__ void __launch_bounds__(FMA_THREADS) attn_fwd_fma(attn_params p) {
    typedef fma_shape<HD> S;
    __shared__ __half2 Qs[FMA_BM][S::LD2], Ks[FMA_BN][S::LD2], Vs[FMA_BN][S::LD2];
    __shared__ float Ps[FMA_BM][FMA_BN + 1];
    const int tid = threadIdx.x, r = tid >> 2, qd = tid & 3;
    const int t0 = (gridDim.x - 1 - blockIdx.x) * p.ppb, h0 = blockIdx.y * p.hb, kvh = h0 / p.group;
    const attn_row me = attn_map_row(p, t0, h0, r);
    fma_load_rows<HD>(Qs, FMA_BM, p.q, [&](int rr) -> int64_t {
        attn_row a = attn_map_row(p, t0, h0, rr);
        return a.valid ? (int64_t)a.pos * p.ldq + (int64_t)a.head * HD : -1;
    });
    const float sl2 = p.scale * ATT_LOG2E;  // scores in the log2 domain: exp2f instead of expf
    float m = -INFINITY, l = 0.0f, acc[S::NC];
#pragma unroll
    for (int j = 0; j < S::NC; j++) acc[j] = 0.0f;
    const int maxpos = min(t0 + p.ppb - 1, p.T - 1), ntiles = maxpos / FMA_BN + 1;
    const __half *Vh = reinterpret_cast<const __half *>(&Vs[0][0]);
    for (int kt = 0; kt < ntiles; kt++) {
        const int n0 = kt * FMA_BN;
        __syncthreads();  // the previous tile is consumed (and Qs is written, on the first pass)
        auto kv_off = [&](int nn) -> int64_t {
            return n0 + nn < p.T ? (int64_t)(n0 + nn) * p.ldkv + (int64_t)kvh * HD : -1;
        };
        fma_load_rows<HD>(Ks, FMA_BN, p.k, kv_off);
        fma_load_rows<HD>(Vs, FMA_BN, p.v, kv_off);  // zeros past T: p = 0 there, and 0 * garbage could be NaN
        __syncthreads();
        float s[8], tmax = -INFINITY;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            int n = qd + 4 * i;
            float d = dot_h2<S::H2>(Qs[r], Ks[n]);
            s[i] = n0 + n <= me.lim ? d * sl2 : -INFINITY;
            tmax = fmaxf(tmax, s[i]);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
        const float mnew = fmaxf(m, tmax);  // finite: key 0 is in tile 0 and every row may see it
        const float alpha = exp2f(m - mnew);
        float psum = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            float pv = exp2f(s[i] - mnew);
            Ps[r][qd + 4 * i] = pv;
            psum += pv;
        }
        psum += __shfl_xor_sync(0xffffffffu, psum, 1);
        psum += __shfl_xor_sync(0xffffffffu, psum, 2);
        l = l * alpha + psum;
        m = mnew;
        __syncwarp();  // the row's 4 lanes (one warp) wrote Ps[r]
#pragma unroll
        for (int j = 0; j < S::NC; j++) acc[j] *= alpha;
        for (int n = 0; n < FMA_BN; n++) {
            float pv = Ps[r][n];
            const __half *vr = Vh + n * S::LD + qd;
#pragma unroll
            for (int j = 0; j < S::NC; j++) acc[j] = fmaf(pv, h2f(vr[4 * j]), acc[j]);
        }
    }
    if (me.valid) {
        float inv = 1.0f / l;
        __half *o = p.out + (int64_t)me.pos * p.ldo + (int64_t)me.head * HD + qd;
#pragma unroll
        for (int j = 0; j < S::NC; j++) o[4 * j] = f2h(acc[j] * inv);
        if (qd == 0) p.lse[(int64_t)me.head * p.T + me.pos] = (m + log2f(l)) * ATT_LN2;
    }
}

// dQ for a block of query rows: dS = P (dP - D) with P recomputed from lse, dQ = scale * dS K.
template <int HD>
__global__ void __launch_bounds__(FMA_THREADS) attn_bwd_dq_fma(attn_params p) {
    typedef fma_shape<HD> S;
    __shared__ __half2 Qs[FMA_BM][S::LD2], dOs[FMA_BM][S::LD2], Ks[FMA_BN][S::LD2], Vs[FMA_BN][S::LD2];
    __shared__ float dSs[FMA_BM][FMA_BN + 1];
    const int tid = threadIdx.x, r = tid >> 2, qd = tid & 3;
    const int t0 = (gridDim.x - 1 - blockIdx.x) * p.ppb, h0 = blockIdx.y * p.hb, kvh = h0 / p.group;
    const attn_row me = attn_map_row(p, t0, h0, r);
    fma_load_rows<HD>(Qs, FMA_BM, p.q, [&](int rr) -> int64_t {
        attn_row a = attn_map_row(p, t0, h0, rr);
        return a.valid ? (int64_t)a.pos * p.ldq + (int64_t)a.head * HD : -1;
    });
    fma_load_rows<HD>(dOs, FMA_BM, p.dout, [&](int rr) -> int64_t {
        attn_row a = attn_map_row(p, t0, h0, rr);
        return a.valid ? (int64_t)a.pos * p.ldo + (int64_t)a.head * HD : -1;
    });
    const float sl2 = p.scale * ATT_LOG2E;
    const int64_t stat = (int64_t)me.head * p.T + me.pos;
    const float lse2 = me.valid ? p.lse_in[stat] * ATT_LOG2E : 0.0f, Dr = me.valid ? p.D[stat] : 0.0f;
    float acc[S::NC];
#pragma unroll
    for (int j = 0; j < S::NC; j++) acc[j] = 0.0f;
    const int maxpos = min(t0 + p.ppb - 1, p.T - 1), ntiles = maxpos / FMA_BN + 1;
    const __half *Kh = reinterpret_cast<const __half *>(&Ks[0][0]);
    for (int kt = 0; kt < ntiles; kt++) {
        const int n0 = kt * FMA_BN;
        __syncthreads();
        auto kv_off = [&](int nn) -> int64_t {
            return n0 + nn < p.T ? (int64_t)(n0 + nn) * p.ldkv + (int64_t)kvh * HD : -1;
        };
        fma_load_rows<HD>(Ks, FMA_BN, p.k, kv_off);
        fma_load_rows<HD>(Vs, FMA_BN, p.v, kv_off);
        __syncthreads();
#pragma unroll
        for (int i = 0; i < 8; i++) {
            int n = qd + 4 * i;
            float ds = 0.0f;
            if (n0 + n <= me.lim) {
                float pv = exp2f(dot_h2<S::H2>(Qs[r], Ks[n]) * sl2 - lse2);
                float dp = dot_h2<S::H2>(dOs[r], Vs[n]);
                ds = pv * (dp - Dr);
            }
            dSs[r][n] = ds;
        }
        __syncwarp();
        for (int n = 0; n < FMA_BN; n++) {
            float ds = dSs[r][n];
            const __half *kr = Kh + n * S::LD + qd;
#pragma unroll
            for (int j = 0; j < S::NC; j++) acc[j] = fmaf(ds, h2f(kr[4 * j]), acc[j]);
        }
    }
    if (me.valid) {
        __half *dq = p.dq + (int64_t)me.pos * p.ldq + (int64_t)me.head * HD + qd;
#pragma unroll
        for (int j = 0; j < S::NC; j++) dq[4 * j] = f2h(acc[j] * p.scale);
    }
}

// dK, dV for a tile of FMA_BN keys of one KV head: loops over the group's query heads and the query tiles at or
// after the keys (causal), so each K/V tile is loaded once and its gradients written once.
template <int HD>
__global__ void __launch_bounds__(FMA_THREADS) attn_bwd_dkdv_fma(attn_params p) {
    typedef fma_shape<HD> S;
    __shared__ __half2 Ks[FMA_BN][S::LD2], Vs[FMA_BN][S::LD2], Qs[FMA_BM][S::LD2], dOs[FMA_BM][S::LD2];
    __shared__ float Ps[FMA_BN][FMA_BM + 1], dSs[FMA_BN][FMA_BM + 1], lse_s[FMA_BM], D_s[FMA_BM];
    const int tid = threadIdx.x, n = tid >> 2, qd = tid & 3;
    const int n0 = blockIdx.x * FMA_BN, kvh = blockIdx.y, key = n0 + n;
    auto kv_off = [&](int nn) -> int64_t {
        return n0 + nn < p.T ? (int64_t)(n0 + nn) * p.ldkv + (int64_t)kvh * HD : -1;
    };
    fma_load_rows<HD>(Ks, FMA_BN, p.k, kv_off);
    fma_load_rows<HD>(Vs, FMA_BN, p.v, kv_off);
    const float sl2 = p.scale * ATT_LOG2E;
    float dk[S::NC], dv[S::NC];
#pragma unroll
    for (int j = 0; j < S::NC; j++) dk[j] = dv[j] = 0.0f;
    const __half *Qh = reinterpret_cast<const __half *>(&Qs[0][0]), *dOh = reinterpret_cast<const __half *>(&dOs[0][0]);
    for (int hl = 0; hl < p.group; hl++) {
        const int head = kvh * p.group + hl;
        for (int m0 = n0 - n0 % FMA_BM; m0 < p.T; m0 += FMA_BM) {
            __syncthreads();  // previous tile consumed; K/V loaded on the first pass
            fma_load_rows<HD>(Qs, FMA_BM, p.q, [&](int mm) -> int64_t {
                return m0 + mm < p.T ? (int64_t)(m0 + mm) * p.ldq + (int64_t)head * HD : -1;
            });
            fma_load_rows<HD>(dOs, FMA_BM, p.dout, [&](int mm) -> int64_t {
                return m0 + mm < p.T ? (int64_t)(m0 + mm) * p.ldo + (int64_t)head * HD : -1;
            });
            if (tid < FMA_BM) {
                int64_t st = (int64_t)head * p.T + m0 + tid;
                lse_s[tid] = m0 + tid < p.T ? p.lse_in[st] * ATT_LOG2E : 0.0f;
                D_s[tid] = m0 + tid < p.T ? p.D[st] : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int i = 0; i < 8; i++) {
                int mm = qd + 4 * i, query = m0 + mm;
                float pv = 0.0f, ds = 0.0f;
                if (query < p.T && key <= query) {
                    pv = exp2f(dot_h2<S::H2>(Ks[n], Qs[mm]) * sl2 - lse_s[mm]);
                    ds = pv * (dot_h2<S::H2>(Vs[n], dOs[mm]) - D_s[mm]);
                }
                Ps[n][mm] = pv;
                dSs[n][mm] = ds;
            }
            __syncwarp();
            for (int mm = 0; mm < FMA_BM; mm++) {
                float pv = Ps[n][mm], ds = dSs[n][mm];
                const __half *dor = dOh + mm * S::LD + qd, *qr = Qh + mm * S::LD + qd;
#pragma unroll
                for (int j = 0; j < S::NC; j++) {
                    dv[j] = fmaf(pv, h2f(dor[4 * j]), dv[j]);
                    dk[j] = fmaf(ds, h2f(qr[4 * j]), dk[j]);
                }
            }
        }
    }
    if (key < p.T) {
        __half *dkp = p.dk + (int64_t)key * p.ldkv + (int64_t)kvh * HD + qd;
        __half *dvp = p.dv + (int64_t)key * p.ldkv + (int64_t)kvh * HD + qd;
#pragma unroll
        for (int j = 0; j < S::NC; j++) {
            dkp[4 * j] = f2h(dk[j] * p.scale);
            dvp[4 * j] = f2h(dv[j]);
        }
    }
}

void attn_fma_forward(attn_params p, int hd, cudaStream_t stream) {
    attn_pack(&p, FMA_BM);
    dim3 grid((p.T + p.ppb - 1) / p.ppb, p.nh / p.hb);
#define LAUNCH(H) attn_fwd_fma<H><<<grid, FMA_THREADS, 0, stream>>>(p)
    ATT_HD_DISPATCH(hd, LAUNCH);
#undef LAUNCH
    KN_CHECK_LAUNCH();
}

void attn_fma_backward(attn_params p, int hd, cudaStream_t stream) {
    attn_pack(&p, FMA_BM);
    dim3 grid_q((p.T + p.ppb - 1) / p.ppb, p.nh / p.hb), grid_kv((p.T + FMA_BN - 1) / FMA_BN, p.nkv);
#define LAUNCH(H)                                                                                                  \
    attn_bwd_dq_fma<H><<<grid_q, FMA_THREADS, 0, stream>>>(p);                                                     \
    KN_CHECK_LAUNCH();                                                                                             \
    attn_bwd_dkdv_fma<H><<<grid_kv, FMA_THREADS, 0, stream>>>(p)
    ATT_HD_DISPATCH(hd, LAUNCH);
#undef LAUNCH
    KN_CHECK_LAUNCH();
}
