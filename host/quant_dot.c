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

T512 static int32_t dot_avx512(const uint8_t *a, const int8_t *w, int n) {
    int i = 0;
    __m512i acc = _mm512_setzero_si512();
    for (; i + 64 <= n; i += 64) acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(a + i), _mm512_loadu_si512(w + i));
    if (i < n) { /* masked tail: lanes past n load as zero and are never touched in memory */
        __mmask64 k = ((__mmask64)1 << (n - i)) - 1;
        acc = _mm512_dpbusd_epi32(acc, _mm512_maskz_loadu_epi8(k, a + i), _mm512_maskz_loadu_epi8(k, w + i));
    }
    return _mm512_reduce_add_epi32(acc);
}

/* Four rows at once: one activation load feeds four independent accumulators, which hides vpdpbusd's latency (a
 * single row is one dependent chain) and shares the horizontal sums. Groups must be multiples of 64. The four
 * rows are 4*cols contiguous bytes: that stream is prefetched linearly QPF bytes ahead (4 lines per 64 columns).
 * Measured by thread CPU time on the 304m shapes (one thread): strided prefetches of rows r+8..r+11 streamed 33
 * GB/s, the linear stream 8 KiB ahead 39-40 GB/s whatever the alignment. Prefetches past the end never fault. */
T512 static void qrow4_avx512(const sc_qmat *m, int r, const uint8_t *xq, const float *xs, float *y) {
    size_t C = (size_t)m->cols, ng = (size_t)m->ngroups;
    const int8_t *w = m->q + (size_t)r * C;
    const char *pf = (const char *)w + QPF;
    float acc[4] = {0, 0, 0, 0};
    for (int g = 0; g < m->ngroups; g++) {
        int c0 = g * m->group, c1 = c0 + m->group;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = c0; c < c1; c += 64) {
            __m512i x = _mm512_loadu_si512(xq + c);
            _mm_prefetch(pf + 4 * (size_t)c, _MM_HINT_T0);
            _mm_prefetch(pf + 4 * (size_t)c + 64, _MM_HINT_T0);
            _mm_prefetch(pf + 4 * (size_t)c + 128, _MM_HINT_T0);
            _mm_prefetch(pf + 4 * (size_t)c + 192, _MM_HINT_T0);
            a0 = _mm512_dpbusd_epi32(a0, x, _mm512_loadu_si512(w + c));
            a1 = _mm512_dpbusd_epi32(a1, x, _mm512_loadu_si512(w + C + c));
            a2 = _mm512_dpbusd_epi32(a2, x, _mm512_loadu_si512(w + 2 * C + c));
            a3 = _mm512_dpbusd_epi32(a3, x, _mm512_loadu_si512(w + 3 * C + c));
        }
        int32_t d[4] = {_mm512_reduce_add_epi32(a0), _mm512_reduce_add_epi32(a1), _mm512_reduce_add_epi32(a2),
                        _mm512_reduce_add_epi32(a3)};
        for (int k = 0; k < 4; k++) {
            size_t i = (size_t)(r + k) * ng + (size_t)g;
            acc[k] += m->fscale[i] * xs[g] * (float)(d[k] - m->wsum[i]);
        }
    }
    for (int k = 0; k < 4; k++) y[k] = acc[k];
}

T512 static void qrows_avx512(const sc_qmat *m, int r0, int r1, const uint8_t *xq, const float *xs, float *y) {
    int r = r0;
    if (m->group % 64 == 0 && m->cols % m->group == 0)
        for (; r + 4 <= r1; r += 4) qrow4_avx512(m, r, xq, xs, y + r);
    rows_by_dot(dot_avx512, m, r, r1, xq, xs, y);
}

/* ---- choice ---- */

static const struct {
    const char *name;
    qrows_fn fn;
} kernels[] = {{"avx512-vnni", qrows_avx512}, {"avx-vnni", qrows_avxvnni}, {"avx2", qrows_avx2}, {"scalar", qrows_scalar}};
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
