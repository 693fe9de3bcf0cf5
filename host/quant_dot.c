/* quant_dot.c — the INT8 x INT8 row dot products of decode (quant.h), one per instruction set, chosen at run time
 * from what the CPU reports (so a portable build, without -march=native, still gets VNNI), with a scalar twin that
 * every other kernel equals bit for bit: the integer dot products are exact, and each kernel combines the groups
 * with the same float expression in the same order. Activations are u8 (x + 128); wsum removes the offset. */
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

#include "host/quant.h"

enum { QPF = 8192 }; /* software prefetch distance of the 4-row kernels, bytes */

typedef int32_t (*dot_fn)(const uint8_t *a, const int8_t *w, int n);

/* y[r] for rows [r0, r1): one row at a time through `dot` */
static inline void rows_by_dot(dot_fn dot, const sc_qmat *m, int r0, int r1, const uint8_t *xq, const float *xs,
                               float *y) {
    for (int r = r0; r < r1; r++) {
        const int8_t *w = m->q + (size_t)r * m->cols;
        const float *fs = m->fscale + (size_t)r * m->ngroups;
        const int32_t *ws = m->wsum + (size_t)r * m->ngroups;
        float acc = 0;
        for (int g = 0; g < m->ngroups; g++) {
            int c0 = g * m->group, n = c0 + m->group < m->cols ? m->group : m->cols - c0;
            acc += fs[g] * xs[g] * (float)(dot(xq + c0, w + c0, n) - ws[g]);
        }
        y[r] = acc;
    }
}

/* ---- scalar: the reference ---- */

static int32_t dot_scalar(const uint8_t *a, const int8_t *w, int n) {
    int32_t s = 0;
    for (int i = 0; i < n; i++) s += (int32_t)a[i] * w[i];
    return s;
}

static void qrows_scalar(const sc_qmat *m, int r0, int r1, const uint8_t *xq, const float *xs, float *y) {
    rows_by_dot(dot_scalar, m, r0, r1, xq, xs, y);
}

/* ---- AVX2: widen to i16 and multiply-add pairs (exact: |a*w| <= 255*127, pair sums fit i32) ---- */

/* the eight 32-bit lanes of acc added, plus the products a[i..n) w[i..n) the vector loop left */
__attribute__((target("avx2"))) static inline int32_t dot_finish_avx2(__m256i acc, const uint8_t *a, const int8_t *w,
                                                                      int i, int n) {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    int32_t s = _mm_cvtsi128_si32(h);
    for (; i < n; i++) s += (int32_t)a[i] * w[i];
    return s;
}

__attribute__((target("avx2,fma"))) static int32_t dot_avx2(const uint8_t *a, const int8_t *w, int n) {
    int i = 0;
    __m256i acc = _mm256_setzero_si256();
    for (; i + 16 <= n; i += 16) {
        __m256i av = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(av, wv));
    }
    return dot_finish_avx2(acc, a, w, i, n);
}

__attribute__((target("avx2,fma"))) static void qrows_avx2(const sc_qmat *m, int r0, int r1, const uint8_t *xq,
                                                           const float *xs, float *y) {
    rows_by_dot(dot_avx2, m, r0, r1, xq, xs, y);
}

/* ---- AVX-VNNI (256-bit vpdpbusd without AVX-512: Alder Lake and later) ---- */

__attribute__((target("avx2,fma,avxvnni"))) static int32_t dot_avxvnni(const uint8_t *a, const int8_t *w, int n) {
    int i = 0;
    __m256i acc = _mm256_setzero_si256();
    for (; i + 32 <= n; i += 32)
        acc = _mm256_dpbusd_avx_epi32(acc, _mm256_loadu_si256((const __m256i *)(a + i)),
                                      _mm256_loadu_si256((const __m256i *)(w + i)));
    return dot_finish_avx2(acc, a, w, i, n);
}

__attribute__((target("avx2,fma,avxvnni"))) static void qrows_avxvnni(const sc_qmat *m, int r0, int r1,
                                                                      const uint8_t *xq, const float *xs, float *y) {
    rows_by_dot(dot_avxvnni, m, r0, r1, xq, xs, y);
}

/* ---- AVX-512 VNNI ---- */

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/* ---- several tokens at once: verification of drafted tokens, prefill ---- */

/* y[t * rows + r] for rows [r0, r1) and tokens [0, T) by the one-token kernel, token after token (the AVX2,
 * AVX-VNNI and scalar products of several tokens: each weight block is re-read from L1 per token) */
static inline void mm_by_rows(qrows_fn rows, const sc_qmat *m, int r0, int r1, const uint8_t *xq, const float *xs,
                              float *y, int T) {
    for (int t = 0; t < T; t++)
        rows(m, r0, r1, xq + (size_t)t * m->cols, xs + (size_t)t * m->ngroups, y + (size_t)t * m->rows);
}

static void qmm_scalar(const sc_qmat *m, int r0, int r1, const uint8_t *xq, const float *xs, float *y, int T) {
    mm_by_rows(qrows_scalar, m, r0, r1, xq, xs, y, T);
}

__attribute__((target("avx2,fma"))) static void qmm_avx2(const sc_qmat *m, int r0, int r1, const uint8_t *xq,
                                                         const float *xs, float *y, int T) {
    mm_by_rows(qrows_avx2, m, r0, r1, xq, xs, y, T);
}

__attribute__((target("avx2,fma,avxvnni"))) static void qmm_avxvnni(const sc_qmat *m, int r0, int r1,
                                                                    const uint8_t *xq, const float *xs, float *y,
                                                                    int T) {
    mm_by_rows(qrows_avxvnni, m, r0, r1, xq, xs, y, T);
}

/* AVX-512 VNNI: a tile of MM_R weight rows x up to MM_T tokens keeps MM_R * MM_T accumulators in registers (24 of
 * the 32), so each 64-byte weight vector is loaded once for all the tile's tokens and each activation vector once
 * for all its rows: 24 independent vpdpbusd per 10 loads, where one token at a time did 4 per 5 loads on 4
 * dependent chains. Measured on the 304m-shaped layers (1 thread, Zen 5): ~290 GMAC/s from cache against ~130
 * token by token (the core peaks at 2 vpdpbusd a cycle, ~520 GMAC/s); a pass of 9 tokens on a 104 MiB target
 * costs 2.1-2.2 decode steps of CPU instead of 2.9, the rest being mostly attention. Any group size and column
 * count (masked tail loads); the float sums are the scalar kernel's expression in the scalar kernel's order, so
 * every token's result equals its one-token product bit for bit. */
enum { MM_R = 4, MM_T = 6 };

/* acc += the u8 x s8 dot products of each 4 bytes (vpdpbusd) as an asm statement with acc tied in and out: through
 * the intrinsic, GCC 12 copied every accumulator of a tile to another register once per step (the destructive
 * instruction's loop-carried operand was not coalesced) or sent them through the stack */
T512 static inline __m512i mm_dp(__m512i acc, __m512i x, __m512i w) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
    return acc;
}

/* the sums of the 32-bit lanes of four vectors: lane i of the result = sum of v[i] */
T512 static inline __m128i mm_reduce4(__m512i v0, __m512i v1, __m512i v2, __m512i v3) {
    __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(v0, v1), _mm512_unpackhi_epi32(v0, v1));
    __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(v2, v3), _mm512_unpackhi_epi32(v2, v3));
    /* each 128-bit lane now holds [v0, v1, v0, v1] and [v2, v3, v2, v3] partial sums */
    __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
    /* each 128-bit lane: [v0, v1, v2, v3] over its 16 bytes of columns; add the four lanes */
    s = _mm512_add_epi32(s, _mm512_shuffle_i32x4(s, s, 0x4e));
    s = _mm512_add_epi32(s, _mm512_shuffle_i32x4(s, s, 0xb1));
    return _mm512_castsi512_si128(s);
}

/* the float sums of a tile from its integer dot products d[i] (row i % NR, token i / NR): the scalar kernel's
 * expression, groups in the same order */
static inline __attribute__((always_inline)) void mm_tile_sums(const sc_qmat *m, int r, int NR, const float *xs,
                                                               int t0, int NT, int g, const int32_t *d, float *acc) {
    size_t ng = (size_t)m->ngroups;
    for (int i = 0; i < NR * NT; i++) {
        size_t wi = (size_t)(r + i % NR) * ng + (size_t)g;
        acc[i] += m->fscale[wi] * xs[(size_t)(t0 + i / NR) * ng + g] * (float)(d[i] - m->wsum[wi]);
    }
}

/* One tile: rows r .. r + NR - 1 (NR = 4 or 1), tokens t0 .. t0 + NT - 1 (NT <= 6; NR, NT and PF compile-time
 * constants after inlining). The 24 accumulators are named variables pinned to zmm8..zmm31: as an array GCC 12
 * left them in memory (a load and a store per vpdpbusd), and as free variables its register allocator still
 * spilled accumulators or weights inside the loop in some tile shapes (a 4-token pass then cost 1.9 decode
 * steps, 1.2 pinned). Whole vectors and the column tail go through one loop with a mask (all ones but at the
 * tail, whose lanes past c1 load as zero and are never touched in memory). PF: prefetch the weight stream (the
 * tile that first touches these rows; later tiles find them in L1/L2). */
T512 static inline __attribute__((always_inline)) void mm_tile_avx512(const sc_qmat *m, int r, const int NR,
                                                                      const uint8_t *xq, const float *xs, float *y,
                                                                      int t0, const int NT, const int PF) {
    size_t C = (size_t)m->cols;
    const int8_t *w = m->q + (size_t)r * C;
    const char *pfp = (const char *)w + QPF;
    const uint8_t *x = xq + (size_t)t0 * C;
    float acc[MM_R * 6] = {0};
    for (int g = 0; g < m->ngroups; g++) {
        int c0 = g * m->group, c1 = c0 + m->group < m->cols ? c0 + m->group : m->cols;
        __m512i z = _mm512_setzero_si512();
        /* aKJ: row K, token J; pinned to zmm8..zmm31 for the asm statements that use them (GCC 12's register
         * allocator otherwise spilled accumulators or weights of some tile shapes inside the loop) */
        register __m512i a00 __asm__("zmm8") = z, a01 __asm__("zmm9") = z, a02 __asm__("zmm10") = z,
                         a03 __asm__("zmm11") = z, a04 __asm__("zmm12") = z, a05 __asm__("zmm13") = z;
        register __m512i a10 __asm__("zmm14") = z, a11 __asm__("zmm15") = z, a12 __asm__("zmm16") = z,
                         a13 __asm__("zmm17") = z, a14 __asm__("zmm18") = z, a15 __asm__("zmm19") = z;
        register __m512i a20 __asm__("zmm20") = z, a21 __asm__("zmm21") = z, a22 __asm__("zmm22") = z,
                         a23 __asm__("zmm23") = z, a24 __asm__("zmm24") = z, a25 __asm__("zmm25") = z;
        register __m512i a30 __asm__("zmm26") = z, a31 __asm__("zmm27") = z, a32 __asm__("zmm28") = z,
                         a33 __asm__("zmm29") = z, a34 __asm__("zmm30") = z, a35 __asm__("zmm31") = z;
        for (int c = c0; c < c1; c += 64) {
            __mmask64 mk = c1 - c >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (c1 - c)) - 1;
            __m512i w0 = _mm512_maskz_loadu_epi8(mk, w + c), w1 = z, w2 = z, w3 = z;
            if (PF) _mm_prefetch(pfp + NR * (size_t)c, _MM_HINT_T0);
            if (NR > 1) {
                if (PF) {
                    _mm_prefetch(pfp + NR * (size_t)c + 64, _MM_HINT_T0);
                    _mm_prefetch(pfp + NR * (size_t)c + 128, _MM_HINT_T0);
                    _mm_prefetch(pfp + NR * (size_t)c + 192, _MM_HINT_T0);
                }
                w1 = _mm512_maskz_loadu_epi8(mk, w + C + c);
                w2 = _mm512_maskz_loadu_epi8(mk, w + 2 * C + c);
                w3 = _mm512_maskz_loadu_epi8(mk, w + 3 * C + c);
            }
/* token J of the tile against the NR weight vectors */
#define MM_TOKEN(J, A0, A1, A2, A3)                                                                                \
    if (NT > J) {                                                                                                  \
        __m512i xv = _mm512_maskz_loadu_epi8(mk, x + J * C + c);                                                   \
        A0 = mm_dp(A0, xv, w0);                                                                                    \
        if (NR > 1) {                                                                                              \
            A1 = mm_dp(A1, xv, w1);                                                                                \
            A2 = mm_dp(A2, xv, w2);                                                                                \
            A3 = mm_dp(A3, xv, w3);                                                                                \
        }                                                                                                          \
    }
            MM_TOKEN(0, a00, a10, a20, a30)
            MM_TOKEN(1, a01, a11, a21, a31)
            MM_TOKEN(2, a02, a12, a22, a32)
            MM_TOKEN(3, a03, a13, a23, a33)
            MM_TOKEN(4, a04, a14, a24, a34)
            MM_TOKEN(5, a05, a15, a25, a35)
#undef MM_TOKEN
        }
        /* d[i]: row i % NR, token i / NR; four sums per reduction */
        int32_t d[MM_R * 6];
        if (NR > 1) {
            _mm_storeu_si128((__m128i *)(d + 0), mm_reduce4(a00, a10, a20, a30));
            if (NT > 1) _mm_storeu_si128((__m128i *)(d + 4), mm_reduce4(a01, a11, a21, a31));
            if (NT > 2) _mm_storeu_si128((__m128i *)(d + 8), mm_reduce4(a02, a12, a22, a32));
            if (NT > 3) _mm_storeu_si128((__m128i *)(d + 12), mm_reduce4(a03, a13, a23, a33));
            if (NT > 4) _mm_storeu_si128((__m128i *)(d + 16), mm_reduce4(a04, a14, a24, a34));
            if (NT > 5) _mm_storeu_si128((__m128i *)(d + 20), mm_reduce4(a05, a15, a25, a35));
        } else {
            _mm_storeu_si128((__m128i *)(d + 0), mm_reduce4(a00, a01, a02, a03));
            if (NT > 4) _mm_storeu_si128((__m128i *)(d + 4), mm_reduce4(a04, a05, z, z));
        }
        mm_tile_sums(m, r, NR, xs, t0, NT, g, d, acc);
    }
    for (int i = 0; i < NR * NT; i++) y[(size_t)(t0 + i / NR) * m->rows + r + i % NR] = acc[i];
}

/* tiles of NR rows (4, or 1 for the last rows of a matrix whose row count is no multiple of 4) and nt tokens;
 * one instantiation per (NR, nt, PF) so that each keeps its accumulators in registers */
#define MM_TILE(NR, NT, PF) mm_tile_avx512(m, r, NR, xq, xs, y, t0, NT, PF)
T512 static void mm_tiles_avx512(const sc_qmat *m, int r0, int r1, const uint8_t *xq, const float *xs, float *y,
                                 int t0, int nt, int pf) {
    int r = r0;
    for (; r + MM_R <= r1; r += MM_R) switch (nt + 8 * pf) {
        case 1: MM_TILE(MM_R, 1, 0); break;
        case 2: MM_TILE(MM_R, 2, 0); break;
        case 3: MM_TILE(MM_R, 3, 0); break;
        case 4: MM_TILE(MM_R, 4, 0); break;
        case 5: MM_TILE(MM_R, 5, 0); break;
        case 6: MM_TILE(MM_R, 6, 0); break;
        case 9: MM_TILE(MM_R, 1, 1); break;
        case 10: MM_TILE(MM_R, 2, 1); break;
        case 11: MM_TILE(MM_R, 3, 1); break;
        case 12: MM_TILE(MM_R, 4, 1); break;
        case 13: MM_TILE(MM_R, 5, 1); break;
        default: MM_TILE(MM_R, 6, 1); break;
        }
    for (; r < r1; r++) switch (nt) {
        case 1: MM_TILE(1, 1, 0); break;
        case 2: MM_TILE(1, 2, 0); break;
        case 3: MM_TILE(1, 3, 0); break;
        case 4: MM_TILE(1, 4, 0); break;
        case 5: MM_TILE(1, 5, 0); break;
        default: MM_TILE(1, 6, 0); break;
        }
}
#undef MM_TILE

/* The tokens are split into ceil(T / MM_T) tiles of near-equal size (9 = 5 + 4, not 6 + 3: a smaller tile does
 * fewer dot products per weight load); each tile passes over all rows [r0, r1) of the block, whose weights the
 * first tile brings in (prefetched) and the others find in cache. */
T512 static void qmm_avx512(const sc_qmat *m, int r0, int r1, const uint8_t *xq, const float *xs, float *y, int T) {
    int ntiles = (T + MM_T - 1) / MM_T;
    for (int i = 0, t0 = 0; i < ntiles; i++) {
        int nt = (T - t0 + (ntiles - i) - 1) / (ntiles - i);
        mm_tiles_avx512(m, r0, r1, xq, xs, y, t0, nt, i == 0);
        t0 += nt;
    }
}

/* One token is a tile of one token: measured on 304m (one thread, Zen 5, load ~7, alternating), decode read 80-87
 * tok/s this way against 68 through the former one-token kernel (four rows of _mm512_dpbusd_epi32 intrinsics, one
 * horizontal reduce per row), the same bytes. Results are bit for bit the same (the scalar kernel's expression). */
T512 static void qrows_avx512(const sc_qmat *m, int r0, int r1, const uint8_t *xq, const float *xs, float *y) {
    mm_tiles_avx512(m, r0, r1, xq, xs, y, 0, 1, 1);
}

/* ---- choice ---- */

static const struct {
    const char *name;
    qrows_fn fn;
    qmm_fn mm;
} kernels[] = {{"avx512-vnni", qrows_avx512, qmm_avx512},
               {"avx-vnni", qrows_avxvnni, qmm_avxvnni},
               {"avx2", qrows_avx2, qmm_avx2},
               {"scalar", qrows_scalar, qmm_scalar}};
enum { NKERNELS = sizeof kernels / sizeof kernels[0] };

static int kernel_supported(int i) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    switch (i) {
    case 0:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    case 1: { /* CPUID.(7,1):EAX bit 4; not every compiler's __builtin_cpu_supports knows "avxvnni" */
        unsigned a, b, c, d;
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __get_cpuid_count(7, 1, &a, &b, &c, &d) &&
               (a >> 4 & 1);
    }
    case 2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default: return 1;
    }
#else
    return i == NKERNELS - 1;
#endif
}

/* the best kernel this CPU runs, picked before main() so no thread ever sees it change */
static int chosen = NKERNELS - 1;
__attribute__((constructor)) static void quant_dot_pick(void) {
    for (int i = 0; i < NKERNELS; i++)
        if (kernel_supported(i)) {
            chosen = i;
            return;
        }
}

qrows_fn quant_rows_kernel(void) { return kernels[chosen].fn; }
qmm_fn quant_matmul_kernel(void) { return kernels[chosen].mm; }
const char *quant_kernel_name(void) { return kernels[chosen].name; }

int quant_set_kernel(const char *name) {
    for (int i = 0; i < NKERNELS; i++)
        if (strcmp(kernels[i].name, name) == 0) {
            if (!kernel_supported(i)) return -1;
            chosen = i;
            return 0;
        }
    return -1;
}
