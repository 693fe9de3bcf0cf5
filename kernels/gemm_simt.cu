// gemm_simt.cu — our own GEMM for GPUs whose FP16 cuBLAS path collapses (Turing without tensor cores, issue 12):
// FP16 A and B read with 16-byte loads (half the bytes of SGEMM), converted once into FP32 shared-memory tiles,
// an 8x8 (or 4x4) register tile per thread accumulated with FP32 FMA, C = alpha op(A) op(B) + beta C in FP16 or
// FP32. Column-major with cuBLAS's transposes, so it is a drop-in candidate for every GEMM of the model.
// The h2 variant keeps the tiles in FP16 and multiplies with paired FP16 FMAs (__hfma2, twice the FP32 rate on
// TU117) over runs of KN_H2_RUN k-steps, folding each run into the FP32 accumulators; docs/cuda.md has its error.
#include <type_traits>

#include "kernels/common.cuh"
#include "kernels/gemm.cuh"

namespace {

constexpr int BK = 16;        // k per shared-memory tile
constexpr int NT = 256;       // threads per block: 16 x 16, each owning (BM/16) x (BN/16) outputs
constexpr int KN_H2_RUN = 8;  // k-steps summed in FP16 before a fold into FP32 (h2 variant)

// Thread t's 16-byte vector of the tile of op(X) covering rows [r0, r0 + R) and k in [p0, p0 + BK); X is
// column-major with leading dimension ld. CONTIG_K: op(X)(r, p) = X[p + r ld] (k runs along memory), else
// X[r + p ld] (rows do). Elements outside rows x kdim are zero, never read; `vec` says X and ld allow aligned
// 16-byte loads, else (and at the edges) the vector is gathered element by element.
template <int R, bool CONTIG_K>
__device__ __forceinline__ uint4 tile_fetch(const __half *X, int ld, int rows, int kdim, int r0, int p0, bool vec,
                                            int t) {
    constexpr int NV = R * BK / 8;
    uint4 out = make_uint4(0, 0, 0, 0);
    if (t >= NV) return out;
    int r = CONTIG_K ? t / (BK / 8) : (t % (R / 8)) * 8;
    int p = CONTIG_K ? (t % (BK / 8)) * 8 : t / (R / 8);
    int c = CONTIG_K ? p0 + p : r0 + r, ce = CONTIG_K ? kdim : rows;  // along memory
    int o = CONTIG_K ? r0 + r : p0 + p, oe = CONTIG_K ? rows : kdim;  // across
    if (o >= oe || c >= ce) return out;
    const __half *src = X + (size_t)o * ld + c;
    if (vec && c + 8 <= ce) return *(const uint4 *)src;
    union {
        uint4 v;
        __half h[8];
    } u;
    u.v = out;
    for (int e = 0; e < 8 && c + e < ce; e++) u.h[e] = src[e];
    return u.v;
}

template <typename S>
__device__ __forceinline__ S from_half(__half h);
template <>
__device__ __forceinline__ float from_half<float>(__half h) {
    return __half2float(h);
}
template <>
__device__ __forceinline__ __half from_half<__half>(__half h) {
    return h;
}

// Stores tile_fetch's vector into the shared tile Ts[p][r] (row stride LD): k-major, so the inner loop reads a
// contiguous run of rows for one k.
template <int R, bool CONTIG_K, int LD, typename S>
__device__ __forceinline__ void tile_store(S *Ts, int t, uint4 v) {
    constexpr int NV = R * BK / 8;
    if (t >= NV) return;
    int r = CONTIG_K ? t / (BK / 8) : (t % (R / 8)) * 8;
    int p = CONTIG_K ? (t % (BK / 8)) * 8 : t / (R / 8);
    union {
        uint4 v;
        __half h[8];
    } u;
    u.v = v;
    if (CONTIG_K) {
#pragma unroll
        for (int e = 0; e < 8; e++) Ts[(p + e) * LD + r] = from_half<S>(u.h[e]);
    } else if (std::is_same<S, __half>::value) {
        *(uint4 *)&Ts[p * LD + r] = v;
    } else {
#pragma unroll
        for (int e = 0; e < 8; e++) Ts[p * LD + r + e] = from_half<S>(u.h[e]);
    }
}

// N consecutive FP32 values of a shared tile (16- or 8-byte aligned by construction).
template <int N>
__device__ __forceinline__ void lds_f32(const float *p, float *out) {
    if (N == 4) {
        float4 v = *(const float4 *)p;
        out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
    } else if (N == 2) {
        float2 v = *(const float2 *)p;
        out[0] = v.x, out[1] = v.y;
    } else {
        for (int i = 0; i < N; i++) out[i] = p[i];
    }
}

// Which output row (column) the thread's q-th accumulator row (column) is: two halves of TM/2 rows, BM/2 apart,
// so a warp's shared-memory reads are contiguous and its C stores cover 64 consecutive rows.
template <int BM, int TM>
__device__ __forceinline__ int frag_index(int tx, int q) {
    return q < TM / 2 ? tx * (TM / 2) + q : BM / 2 + tx * (TM / 2) + q - TM / 2;
}

template <int BM, int BN, bool TA, bool TB, bool H2>
__global__ __launch_bounds__(NT) void gemm_simt_kernel(int m, int n, int k, float alpha, const __half *A, int lda,
                                                       const __half *B, int ldb, float beta, void *C, int c_fp32,
                                                       int ldc, int vec_a, int vec_b) {
    using S = typename std::conditional<H2, __half, float>::type;
    constexpr int PAD = H2 ? 8 : 4;  // keeps rows 16-byte aligned; breaks the power-of-two row stride
    constexpr int LDA_S = BM + PAD, LDB_S = BN + PAD;
    constexpr int TM = BM / 16, TN = BN / 16;
    __shared__ __align__(16) S As[BK * LDA_S];
    __shared__ __align__(16) S Bs[BK * LDB_S];
    const int t = threadIdx.x, tx = t % 16, ty = t / 16;
    const int i0 = blockIdx.x * BM, j0 = blockIdx.y * BN;
    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;

    // op(A)(i, p): A stored k x m when TA, so k runs along memory. op(B)(p, j): B stored k x n unless TB.
    uint4 ra = tile_fetch<BM, TA>(A, lda, m, k, i0, 0, vec_a, t);
    uint4 rb = tile_fetch<BN, !TB>(B, ldb, n, k, j0, 0, vec_b, t);
    for (int p0 = 0; p0 < k; p0 += BK) {
        tile_store<BM, TA, LDA_S>(As, t, ra);
        tile_store<BN, !TB, LDB_S>(Bs, t, rb);
        __syncthreads();
        if (p0 + BK < k) {  // the next tile's loads are in flight during this tile's arithmetic
            ra = tile_fetch<BM, TA>(A, lda, m, k, i0, p0 + BK, vec_a, t);
            rb = tile_fetch<BN, !TB>(B, ldb, n, k, j0, p0 + BK, vec_b, t);
        }
        if constexpr (!H2) {
#pragma unroll
            for (int p = 0; p < BK; p++) {
                float a[TM], b[TN];
                lds_f32<TM / 2>((const float *)&As[p * LDA_S + tx * (TM / 2)], a);
                lds_f32<TM / 2>((const float *)&As[p * LDA_S + BM / 2 + tx * (TM / 2)], a + TM / 2);
                lds_f32<TN / 2>((const float *)&Bs[p * LDB_S + ty * (TN / 2)], b);
                lds_f32<TN / 2>((const float *)&Bs[p * LDB_S + BN / 2 + ty * (TN / 2)], b + TN / 2);
#pragma unroll
                for (int i = 0; i < TM; i++)
#pragma unroll
                    for (int j = 0; j < TN; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
            }
        } else {
#pragma unroll
            for (int p1 = 0; p1 < BK; p1 += KN_H2_RUN) {
                __half2 acc2[TM / 2][TN];  // rows (2q, 2q+1) of column j, summed in FP16 over one run
#pragma unroll
                for (int q = 0; q < TM / 2; q++)
#pragma unroll
                    for (int j = 0; j < TN; j++) acc2[q][j] = __floats2half2_rn(0.0f, 0.0f);
#pragma unroll
                for (int p = p1; p < p1 + KN_H2_RUN; p++) {
                    const __half2 *ap0 = (const __half2 *)&As[p * LDA_S + tx * (TM / 2)];
                    const __half2 *ap1 = (const __half2 *)&As[p * LDA_S + BM / 2 + tx * (TM / 2)];
                    __half2 a2[TM / 2];
#pragma unroll
                    for (int q = 0; q < TM / 4; q++) a2[q] = ap0[q], a2[TM / 4 + q] = ap1[q];
#pragma unroll
                    for (int j = 0; j < TN; j++) {
                        int c = frag_index<BN, TN>(ty, j);
                        __half2 bb = __half2half2(Bs[p * LDB_S + c]);
#pragma unroll
                        for (int q = 0; q < TM / 2; q++) acc2[q][j] = __hfma2(a2[q], bb, acc2[q][j]);
                    }
                }
#pragma unroll
                for (int q = 0; q < TM / 2; q++)
#pragma unroll
                    for (int j = 0; j < TN; j++) {
                        float2 f = __half22float2(acc2[q][j]);
                        acc[2 * q][j] += f.x;
                        acc[2 * q + 1][j] += f.y;
                    }
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < TM; i++) {
        int row = i0 + frag_index<BM, TM>(tx, i);
        if (row >= m) continue;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            int col = j0 + frag_index<BN, TN>(ty, j);
            if (col >= n) continue;
            size_t idx = (size_t)col * ldc + row;
            float v = alpha * acc[i][j];
            if (c_fp32) {
                float *c = (float *)C + idx;
                *c = beta != 0.0f ? v + beta * *c : v;  // beta = 0 never reads C (it may hold NaN bytes)
            } else {
                __half *c = (__half *)C + idx;
                *c = __float2half_rn(beta != 0.0f ? v + beta * __half2float(*c) : v);
            }
        }
    }
}

template <int BM, int BN, bool H2>
void simt_launch(cudaStream_t s, int ta, int tb, int m, int n, int k, float alpha, const __half *A, int lda,
                 const __half *B, int ldb, float beta, void *C, int c_fp32, int ldc, int va, int vb) {
    dim3 grid((unsigned)((m + BM - 1) / BM), (unsigned)((n + BN - 1) / BN));
    if (!ta && !tb)
        gemm_simt_kernel<BM, BN, false, false, H2><<<grid, NT, 0, s>>>(m, n, k, alpha, A, lda, B, ldb, beta, C, c_fp32, ldc, va, vb);
    else if (ta && !tb)
        gemm_simt_kernel<BM, BN, true, false, H2><<<grid, NT, 0, s>>>(m, n, k, alpha, A, lda, B, ldb, beta, C, c_fp32, ldc, va, vb);
    else if (!ta && tb)
        gemm_simt_kernel<BM, BN, false, true, H2><<<grid, NT, 0, s>>>(m, n, k, alpha, A, lda, B, ldb, beta, C, c_fp32, ldc, va, vb);
    else
        gemm_simt_kernel<BM, BN, true, true, H2><<<grid, NT, 0, s>>>(m, n, k, alpha, A, lda, B, ldb, beta, C, c_fp32, ldc, va, vb);
    KN_CHECK_LAUNCH();
}

}  // namespace

void kn_gemm_simt(kn_blas *b, int ta, int tb, int m, int n, int k, float alpha, const __half *A, int lda,
                  const __half *B, int ldb, float beta, void *C, int c_fp32, int ldc, int h2) {
    // 16-byte loads need a 16-byte aligned base and a leading dimension that keeps every column aligned
    int va = ((uintptr_t)A % 16 == 0) && lda % 8 == 0, vb = ((uintptr_t)B % 16 == 0) && ldb % 8 == 0;
    // 128 x 128 tiles unless that leaves the GPU's SMs without two blocks each (small token counts, the
    // classifier's dx with its short n): then 64 x 64
    int64_t big = (int64_t)((m + 127) / 128) * ((n + 127) / 128);
    bool small = big < 2 * (int64_t)(b->sm_count > 0 ? b->sm_count : 1);
    if (h2) {
        if (small) simt_launch<64, 64, true>(b->stream, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, c_fp32, ldc, va, vb);
        else simt_launch<128, 128, true>(b->stream, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, c_fp32, ldc, va, vb);
    } else {
        if (small) simt_launch<64, 64, false>(b->stream, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, c_fp32, ldc, va, vb);
        else simt_launch<128, 128, false>(b->stream, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, c_fp32, ldc, va, vb);
    }
}
