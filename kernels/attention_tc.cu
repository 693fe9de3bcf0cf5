// attention_tc.cu — the tensor-core attention path: mma.sync.m16n8k8 (FP16 in, FP32 accumulate), the shape that
// exists on sm_75 as well as on every later GPU, so the same code runs on Turing and Hopper. Four warps; each warp
// owns 16 rows (query rows, or keys in dK/dV) and keeps its accumulators in the mma fragment layout:
//   A (16x8, row): a0 = rows g, cols 2t..2t+1;  a1 = rows g+8, same cols      (g = lane/4, t = lane%4)
//   B (8x8, col):  b0 = k rows 2t..2t+1, col g
//   C (16x8):      c0,c1 = row g, cols 2t..2t+1;  c2,c3 = row g+8, same cols
// so a score tile's C fragments are, after the softmax, directly the A fragments of the next product (P V), as
// in FlashAttention-2. B operands that need a column of a row-major tile are gathered as two halves (simple and
// clearly correct; ldmatrix.trans would be the faster next step). Shared rows are padded by 8 halves.
#include "kernels/attention.cuh"

enum { TC_THREADS = 128 };

__device__ __forceinline__ void mma_16x8x8(float c[4], uint32_t a0, uint32_t a1, uint32_t b0) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(b0));
}

// two floats -> one register of two halves, lo in the low 16 bits (the lower column / k index)
__device__ __forceinline__ uint32_t pack_f2(float lo, float hi) {
    union {
        __half2 h;
        uint32_t u;
    } cvt;
    cvt.h = __floats2half2_rn(lo, hi);
    return cvt.u;
}

__device__ __forceinline__ uint32_t pack_h2(__half lo, __half hi) {
    union {
        __half2 h;
        uint32_t u;
    } cvt;
    cvt.h = __halves2half2(lo, hi);
    return cvt.u;
}

// two consecutive halves of a shared-memory row (4-byte aligned: even column, even row stride)
__device__ __forceinline__ uint32_t lds_pair(const __half *p) { return *reinterpret_cast<const uint32_t *>(p); }

// element pair (k, k+1) of column c in a row-major tile: B operand gathered from rows
__device__ __forceinline__ uint32_t lds_col_pair(const __half *tile, int ld, int k, int c) {
    return pack_h2(tile[k * ld + c], tile[(k + 1) * ld + c]);
}

// Loads nrows x HD halves into dst (row stride LD); row rr comes from src + row_off(rr), or zeros if that is < 0.
template <int HD, int LD, typename RowOff>
__device__ __forceinline__ void tc_load_rows(__half *dst, int nrows, const __half *src, RowOff row_off) {
    constexpr int H2 = HD / 2;
    for (int idx = threadIdx.x; idx < nrows * H2; idx += TC_THREADS) {
        int rr = idx / H2, c2 = idx % H2;
        int64_t off = row_off(rr);
        __half2 v = off >= 0 ? reinterpret_cast<const __half2 *>(src + off)[c2] : __float2half2_rn(0.0f);
        *reinterpret_cast<__half2 *>(dst + rr * LD + 2 * c2) = v;
    }
}

// The block's BM query rows of src (p.q or p.dout, row stride ld) in packed-head order (attn_map_row), zeros for
// rows past the sequence
template <int HD, int LD>
__device__ __forceinline__ void tc_load_query_rows(__half *dst, int nrows, const __half *src, int64_t ld,
                                                   const attn_params &p, int t0, int h0) {
    tc_load_rows<HD, LD>(dst, nrows, src, [&](int rr) -> int64_t {
        attn_row a = attn_map_row(p, t0, h0, rr);
        return a.valid ? (int64_t)a.pos * ld + (int64_t)a.head * HD : -1;
    });
}

// The K and V rows n0 .. n0 + nrows - 1 of KV head kvh into Ks and Vs, zeros past the sequence
template <int HD, int LD>
__device__ __forceinline__ void tc_load_kv(__half *Ks, __half *Vs, int nrows, const attn_params &p, int n0, int kvh) {
    auto kv_off = [&](int nn) -> int64_t {
        return n0 + nn < p.T ? (int64_t)(n0 + nn) * p.ldkv + (int64_t)kvh * HD : -1;
    };
    tc_load_rows<HD, LD>(Ks, nrows, p.k, kv_off);
    tc_load_rows<HD, LD>(Vs, nrows, p.v, kv_off);
}

// The A fragments of a warp's rows r0 and r0 + 8 of a shared tile (Q or dO), one pair per k-step of 8 columns
template <int KS, int LD>
__device__ __forceinline__ void tc_row_frags(uint32_t (&f)[KS][2], const __half *tile, int r0, int tq) {
#pragma unroll
    for (int ks = 0; ks < KS; ks++) {
        f[ks][0] = lds_pair(&tile[r0 * LD + ks * 8 + 2 * tq]);
        f[ks][1] = lds_pair(&tile[(r0 + 8) * LD + ks * 8 + 2 * tq]);
    }
}

// acc += S M for the warp's 16 rows: score tile kk (keys kk*8..) is the A fragment of k-step kk, M the row-major
// [keys, HD] tile in shared memory (V for O += P V, K for dQ += dS K)
template <int NT, int OT, int LD>
__device__ __forceinline__ void tc_acc_scores_times(float (&acc)[OT][4], const float (&s)[NT][4], const __half *M,
                                                    int g, int tq) {
#pragma unroll
    for (int kk = 0; kk < NT; kk++) {
        uint32_t a0 = pack_f2(s[kk][0], s[kk][1]), a1 = pack_f2(s[kk][2], s[kk][3]);
#pragma unroll
        for (int ot = 0; ot < OT; ot++)
            mma_16x8x8(acc[ot], a0, a1, lds_col_pair(M, LD, kk * 8 + 2 * tq, ot * 8 + g));
    }
}

// ---- forward: BM = 64 query rows (packed heads), key tiles of BN = 64 ----
template <int HD>
__global__ void __launch_bounds__(TC_THREADS) attn_fwd_tc(attn_params p) {
    constexpr int BM = 64, BN = 64, LD = HD + 8, KS = HD / 8, NT = BN / 8, OT = HD / 8;
    __shared__ __align__(16) __half Ks[BN * LD];  // holds the Q tile first (BM == BN)
    __shared__ __align__(16) __half Vs[BN * LD];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, tq = lane & 3;
    const int t0 = (gridDim.x - 1 - blockIdx.x) * p.ppb, h0 = blockIdx.y * p.hb, kvh = h0 / p.group;
    const int r0 = warp * 16 + g;
    const attn_row ra = attn_map_row(p, t0, h0, r0), rb = attn_map_row(p, t0, h0, r0 + 8);

    tc_load_query_rows<HD, LD>(Ks, BM, p.q, p.ldq, p, t0, h0);
    __syncthreads();
    uint32_t qf[KS][2];
    tc_row_frags<KS, LD>(qf, Ks, r0, tq);

    const float sl2 = p.scale * ATT_LOG2E;
    float o[OT][4];
#pragma unroll
    for (int ot = 0; ot < OT; ot++) o[ot][0] = o[ot][1] = o[ot][2] = o[ot][3] = 0.0f;
    float ma = -INFINITY, mb = -INFINITY, la = 0.0f, lb = 0.0f;
    const int maxpos = min(t0 + p.ppb - 1, p.T - 1), ntiles = maxpos / BN + 1;
    for (int kt = 0; kt < ntiles; kt++) {
        const int n0 = kt * BN;
        __syncthreads();  // Q fragments read / previous tile consumed
        tc_load_kv<HD, LD>(Ks, Vs, BN, p, n0, kvh);
        __syncthreads();

        float s[NT][4];
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
            for (int ks = 0; ks < KS; ks++)
                mma_16x8x8(s[nt], qf[ks][0], qf[ks][1], lds_pair(&Ks[(nt * 8 + g) * LD + ks * 8 + 2 * tq]));
        }
        float mxa = -INFINITY, mxb = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int key = n0 + nt * 8 + 2 * tq + e;
                s[nt][e] = key <= ra.lim ? s[nt][e] * sl2 : -INFINITY;
                s[nt][2 + e] = key <= rb.lim ? s[nt][2 + e] * sl2 : -INFINITY;
                mxa = fmaxf(mxa, s[nt][e]);
                mxb = fmaxf(mxb, s[nt][2 + e]);
            }
        // the 4 lanes of a quad hold the same two rows
        mxa = fmaxf(mxa, __shfl_xor_sync(0xffffffffu, mxa, 1));
        mxa = fmaxf(mxa, __shfl_xor_sync(0xffffffffu, mxa, 2));
        mxb = fmaxf(mxb, __shfl_xor_sync(0xffffffffu, mxb, 1));
        mxb = fmaxf(mxb, __shfl_xor_sync(0xffffffffu, mxb, 2));
        const float mna = fmaxf(ma, mxa), mnb = fmaxf(mb, mxb);  // finite: key 0 is in tile 0 for every row
        const float aa = exp2f(ma - mna), ab = exp2f(mb - mnb);
        float suma = 0.0f, sumb = 0.0f;
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                s[nt][e] = exp2f(s[nt][e] - mna);
                s[nt][2 + e] = exp2f(s[nt][2 + e] - mnb);
                suma += s[nt][e];
                sumb += s[nt][2 + e];
            }
        suma += __shfl_xor_sync(0xffffffffu, suma, 1);
        suma += __shfl_xor_sync(0xffffffffu, suma, 2);
        sumb += __shfl_xor_sync(0xffffffffu, sumb, 1);
        sumb += __shfl_xor_sync(0xffffffffu, sumb, 2);
        la = la * aa + suma;
        lb = lb * ab + sumb;
        ma = mna;
        mb = mnb;
#pragma unroll
        for (int ot = 0; ot < OT; ot++) {
            o[ot][0] *= aa;
            o[ot][1] *= aa;
            o[ot][2] *= ab;
            o[ot][3] *= ab;
        }
        tc_acc_scores_times<NT, OT, LD>(o, s, Vs, g, tq);  // O += P V
    }
    if (ra.valid) {
        float inv = 1.0f / la;
        __half *out = p.out + (int64_t)ra.pos * p.ldo + (int64_t)ra.head * HD + 2 * tq;
#pragma unroll
        for (int ot = 0; ot < OT; ot++)
            *reinterpret_cast<__half2 *>(out + ot * 8) = __floats2half2_rn(o[ot][0] * inv, o[ot][1] * inv);
        if (tq == 0) p.lse[(int64_t)ra.head * p.T + ra.pos] = (ma + log2f(la)) * ATT_LN2;
    }
    if (rb.valid) {
        float inv = 1.0f / lb;
        __half *out = p.out + (int64_t)rb.pos * p.ldo + (int64_t)rb.head * HD + 2 * tq;
#pragma unroll
        for (int ot = 0; ot < OT; ot++)
            *reinterpret_cast<__half2 *>(out + ot * 8) = __floats2half2_rn(o[ot][2] * inv, o[ot][3] * inv);
        if (tq == 0) p.lse[(int64_t)rb.head * p.T + rb.pos] = (mb + log2f(lb)) * ATT_LN2;
    }
}

// ---- backward dQ: BM = 64 query rows (packed heads) in registers, key tiles of BN = 32 ----
template <int HD>
__global__ void __launch_bounds__(TC_THREADS) attn_bwd_dq_tc(attn_params p) {
    constexpr int BM = 64, BN = 32, LD = HD + 8, KS = HD / 8, NT = BN / 8, OT = HD / 8;
    __shared__ __align__(16) __half Ks[BN * LD];
    __shared__ __align__(16) __half Vs[BN * LD];
    __shared__ __align__(16) __half stage[BM * LD];  // Q, then dO, on their way into registers
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, tq = lane & 3;
    const int t0 = (gridDim.x - 1 - blockIdx.x) * p.ppb, h0 = blockIdx.y * p.hb, kvh = h0 / p.group;
    const int r0 = warp * 16 + g;
    const attn_row ra = attn_map_row(p, t0, h0, r0), rb = attn_map_row(p, t0, h0, r0 + 8);

    uint32_t qf[KS][2], df[KS][2];
    tc_load_query_rows<HD, LD>(stage, BM, p.q, p.ldq, p, t0, h0);
    __syncthreads();
    tc_row_frags<KS, LD>(qf, stage, r0, tq);
    __syncthreads();
    tc_load_query_rows<HD, LD>(stage, BM, p.dout, p.ldo, p, t0, h0);
    __syncthreads();
    tc_row_frags<KS, LD>(df, stage, r0, tq);

    const float sl2 = p.scale * ATT_LOG2E;
    const int64_t sa = (int64_t)ra.head * p.T + ra.pos, sb = (int64_t)rb.head * p.T + rb.pos;
    const float lsea = ra.valid ? p.lse_in[sa] * ATT_LOG2E : 0.0f, Da = ra.valid ? p.D[sa] : 0.0f;
    const float lseb = rb.valid ? p.lse_in[sb] * ATT_LOG2E : 0.0f, Db = rb.valid ? p.D[sb] : 0.0f;
    float dq[OT][4];
#pragma unroll
    for (int ot = 0; ot < OT; ot++) dq[ot][0] = dq[ot][1] = dq[ot][2] = dq[ot][3] = 0.0f;
    const int maxpos = min(t0 + p.ppb - 1, p.T - 1), ntiles = maxpos / BN + 1;
    for (int kt = 0; kt < ntiles; kt++) {
        const int n0 = kt * BN;
        __syncthreads();
        tc_load_kv<HD, LD>(Ks, Vs, BN, p, n0, kvh);
        __syncthreads();
        float s[NT][4], dp[NT][4];
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
            dp[nt][0] = dp[nt][1] = dp[nt][2] = dp[nt][3] = 0.0f;
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                mma_16x8x8(s[nt], qf[ks][0], qf[ks][1], lds_pair(&Ks[(nt * 8 + g) * LD + ks * 8 + 2 * tq]));
                mma_16x8x8(dp[nt], df[ks][0], df[ks][1], lds_pair(&Vs[(nt * 8 + g) * LD + ks * 8 + 2 * tq]));
            }
        }
        // dS = P (dP - D), stored over s
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int key = n0 + nt * 8 + 2 * tq + e;
                float pa = key <= ra.lim ? exp2f(s[nt][e] * sl2 - lsea) : 0.0f;
                float pb = key <= rb.lim ? exp2f(s[nt][2 + e] * sl2 - lseb) : 0.0f;
                s[nt][e] = pa * (dp[nt][e] - Da);
                s[nt][2 + e] = pb * (dp[nt][2 + e] - Db);
            }
        tc_acc_scores_times<NT, OT, LD>(dq, s, Ks, g, tq);  // dQ += dS K
    }
    if (ra.valid) {
        __half *d = p.dq + (int64_t)ra.pos * p.ldq + (int64_t)ra.head * HD + 2 * tq;
#pragma unroll
        for (int ot = 0; ot < OT; ot++)
            *reinterpret_cast<__half2 *>(d + ot * 8) = __floats2half2_rn(dq[ot][0] * p.scale, dq[ot][1] * p.scale);
    }
    if (rb.valid) {
        __half *d = p.dq + (int64_t)rb.pos * p.ldq + (int64_t)rb.head * HD + 2 * tq;
#pragma unroll
        for (int ot = 0; ot < OT; ot++)
            *reinterpret_cast<__half2 *>(d + ot * 8) = __floats2half2_rn(dq[ot][2] * p.scale, dq[ot][3] * p.scale);
    }
}

// ---- backward dK/dV: BN = 64 keys of one KV head (16 per warp), query tiles of BMQ = 32 of each head of the
// group. Shared memory: K, V [BN][LD], Q, dO [BMQ][LD], lse and D of the query tile (dynamic: 52 KB at HD 128).
template <int HD>
struct tc_dkdv_shape {
    static constexpr int BN = 64, BMQ = 32, LD = HD + 8;
    static constexpr size_t smem = sizeof(__half) * (size_t)(2 * BN + 2 * BMQ) * LD + sizeof(float) * 2 * BMQ;
};

template <int HD>
__global__ void __launch_bounds__(TC_THREADS) attn_bwd_dkdv_tc(attn_params p) {
    typedef tc_dkdv_shape<HD> S;
    constexpr int BN = S::BN, BMQ = S::BMQ, LD = S::LD, KS = HD / 8, NT = BMQ / 8, OT = HD / 8;
    extern __shared__ __align__(16) unsigned char tc_smem[];
    __half *Ks = reinterpret_cast<__half *>(tc_smem), *Vs = Ks + BN * LD, *Qs = Vs + BN * LD, *dOs = Qs + BMQ * LD;
    float *lse_s = reinterpret_cast<float *>(dOs + BMQ * LD), *D_s = lse_s + BMQ;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, tq = lane & 3;
    const int n0 = blockIdx.x * BN, kvh = blockIdx.y;
    const int kr = warp * 16 + g, keya = n0 + kr, keyb = keya + 8;
    tc_load_kv<HD, LD>(Ks, Vs, BN, p, n0, kvh);
    const float sl2 = p.scale * ATT_LOG2E;
    float dk[OT][4], dv[OT][4];
#pragma unroll
    for (int ot = 0; ot < OT; ot++)
#pragma unroll
        for (int i = 0; i < 4; i++) dk[ot][i] = dv[ot][i] = 0.0f;
    for (int hl = 0; hl < p.group; hl++) {
        const int head = kvh * p.group + hl;
        for (int m0 = n0 - n0 % BMQ; m0 < p.T; m0 += BMQ) {
            __syncthreads();  // previous tile consumed; K/V written on the first pass
            tc_load_rows<HD, LD>(Qs, BMQ, p.q, [&](int mm) -> int64_t {
                return m0 + mm < p.T ? (int64_t)(m0 + mm) * p.ldq + (int64_t)head * HD : -1;
            });
            tc_load_rows<HD, LD>(dOs, BMQ, p.dout, [&](int mm) -> int64_t {
                return m0 + mm < p.T ? (int64_t)(m0 + mm) * p.ldo + (int64_t)head * HD : -1;
            });
            if (tid < BMQ) {
                int64_t st = (int64_t)head * p.T + m0 + tid;
                lse_s[tid] = m0 + tid < p.T ? p.lse_in[st] * ATT_LOG2E : 0.0f;
                D_s[tid] = m0 + tid < p.T ? p.D[st] : 0.0f;
            }
            __syncthreads();
            if (n0 + warp * 16 > m0 + BMQ - 1) continue;  // this warp's keys are all after the tile's queries
            // S^T = K Q^T and dP^T = V dO^T for the warp's 16 keys x BMQ queries
            float st[NT][4], dpt[NT][4];
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
#pragma unroll
                for (int i = 0; i < 4; i++) st[nt][i] = dpt[nt][i] = 0.0f;
#pragma unroll
                for (int ks = 0; ks < KS; ks++) {
                    int c = ks * 8 + 2 * tq;
                    mma_16x8x8(st[nt], lds_pair(&Ks[kr * LD + c]), lds_pair(&Ks[(kr + 8) * LD + c]),
                               lds_pair(&Qs[(nt * 8 + g) * LD + c]));
                    mma_16x8x8(dpt[nt], lds_pair(&Vs[kr * LD + c]), lds_pair(&Vs[(kr + 8) * LD + c]),
                               lds_pair(&dOs[(nt * 8 + g) * LD + c]));
                }
            }
            // P^T over st, dS^T = P^T (dP^T - D) over dpt
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int qi = nt * 8 + 2 * tq + e, query = m0 + qi;
                    int qok = query < p.T;
                    float pa = qok && keya <= query ? exp2f(st[nt][e] * sl2 - lse_s[qi]) : 0.0f;
                    float pb = qok && keyb <= query ? exp2f(st[nt][2 + e] * sl2 - lse_s[qi]) : 0.0f;
                    st[nt][e] = pa;
                    st[nt][2 + e] = pb;
                    dpt[nt][e] = pa * (dpt[nt][e] - D_s[qi]);
                    dpt[nt][2 + e] = pb * (dpt[nt][2 + e] - D_s[qi]);
                }
            // dV += P^T dO, dK += dS^T Q (scaled at the end): k = the tile's queries
#pragma unroll
            for (int kk = 0; kk < NT; kk++) {
                uint32_t pa0 = pack_f2(st[kk][0], st[kk][1]), pa1 = pack_f2(st[kk][2], st[kk][3]);
                uint32_t da0 = pack_f2(dpt[kk][0], dpt[kk][1]), da1 = pack_f2(dpt[kk][2], dpt[kk][3]);
#pragma unroll
                for (int ot = 0; ot < OT; ot++) {
                    mma_16x8x8(dv[ot], pa0, pa1, lds_col_pair(dOs, LD, kk * 8 + 2 * tq, ot * 8 + g));
                    mma_16x8x8(dk[ot], da0, da1, lds_col_pair(Qs, LD, kk * 8 + 2 * tq, ot * 8 + g));
                }
            }
        }
    }
    if (keya < p.T) {
        int64_t off = (int64_t)keya * p.ldkv + (int64_t)kvh * HD + 2 * tq;
#pragma unroll
        for (int ot = 0; ot < OT; ot++) {
            *reinterpret_cast<__half2 *>(p.dk + off + ot * 8) = __floats2half2_rn(dk[ot][0] * p.scale, dk[ot][1] * p.scale);
            *reinterpret_cast<__half2 *>(p.dv + off + ot * 8) = __floats2half2_rn(dv[ot][0], dv[ot][1]);
        }
    }
    if (keyb < p.T) {
        int64_t off = (int64_t)keyb * p.ldkv + (int64_t)kvh * HD + 2 * tq;
#pragma unroll
        for (int ot = 0; ot < OT; ot++) {
            *reinterpret_cast<__half2 *>(p.dk + off + ot * 8) = __floats2half2_rn(dk[ot][2] * p.scale, dk[ot][3] * p.scale);
            *reinterpret_cast<__half2 *>(p.dv + off + ot * 8) = __floats2half2_rn(dv[ot][2], dv[ot][3]);
        }
    }
}

void attn_tc_forward(attn_params p, int hd, cudaStream_t stream) {
    attn_pack(&p, 64);
    dim3 grid((p.T + p.ppb - 1) / p.ppb, p.nh / p.hb);
#define LAUNCH(H) attn_fwd_tc<H><<<grid, TC_THREADS, 0, stream>>>(p)
    ATT_HD_DISPATCH(hd, LAUNCH);
#undef LAUNCH
    KN_CHECK_LAUNCH();
}

template <int HD>
static void tc_launch_dkdv(const attn_params &p, cudaStream_t stream) {
    typedef tc_dkdv_shape<HD> S;
    // above 48 KB a kernel must opt in; setting it every call is cheap and keeps multi-GPU processes right
    KN_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void *>(&attn_bwd_dkdv_tc<HD>),
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, (int)S::smem));
    dim3 grid((p.T + S::BN - 1) / S::BN, p.nkv);
    attn_bwd_dkdv_tc<HD><<<grid, TC_THREADS, S::smem, stream>>>(p);
}

void attn_tc_backward(attn_params p, int hd, cudaStream_t stream) {
    attn_pack(&p, 64);
    dim3 grid_q((p.T + p.ppb - 1) / p.ppb, p.nh / p.hb);
#define LAUNCH(H)                                                                                                  \
    attn_bwd_dq_tc<H><<<grid_q, TC_THREADS, 0, stream>>>(p);                                                       \
    KN_CHECK_LAUNCH();                                                                                             \
    tc_launch_dkdv<H>(p, stream)
    ATT_HD_DISPATCH(hd, LAUNCH);
#undef LAUNCH
    KN_CHECK_LAUNCH();
}
