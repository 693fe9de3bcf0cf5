/* quant.c — INT8 weight quantization and the INT8 x INT8 dot products of decode (see quant.h). The u8 x s8
 * VNNI instruction (vpdpbusd) multiplies unsigned activations by signed weights, so activations carry a +128
 * offset and the precomputed 128 * sum(w) of each group takes it back out exactly (integer arithmetic). */
#include "host/quant.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/half.h"

int quant_ngroups(int cols, int group) { return group <= 0 || group >= cols ? 1 : (cols + group - 1) / group; }

void quant_rows(const float *w, int rows, int cols, int group, int8_t *q, uint16_t *scale) {
    int G = group <= 0 || group > cols ? cols : group, ng = quant_ngroups(cols, group);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        for (int g = 0; g < ng; g++) {
            int c0 = g * G, c1 = c0 + G < cols ? c0 + G : cols;
            float amax = 0;
            for (int c = c0; c < c1; c++) amax = fmaxf(amax, fabsf(w[(size_t)r * cols + c]));
            uint16_t h = float_to_half(amax / 127.0f);
            float s = half_to_float(h);
            if (s == 0 && amax > 0) h = 1, s = half_to_float(1); /* tiny groups: smallest subnormal scale */
            scale[(size_t)r * ng + g] = h;
            float inv = s > 0 ? 1.0f / s : 0;
            for (int c = c0; c < c1; c++) {
                float v = rintf(w[(size_t)r * cols + c] * inv);
                q[(size_t)r * cols + c] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
            }
        }
    }
}

void qmat_prepare(sc_qmat *m) {
    m->ngroups = quant_ngroups(m->cols, m->group);
    if (m->group <= 0 || m->group > m->cols) m->group = m->cols;
    size_t n = (size_t)m->rows * m->ngroups;
    m->fscale = sc_malloc(n * sizeof(float));
    m->wsum = sc_malloc(n * sizeof(int32_t));
    for (int r = 0; r < m->rows; r++)
        for (int g = 0; g < m->ngroups; g++) {
            int c0 = g * m->group, c1 = c0 + m->group < m->cols ? c0 + m->group : m->cols, s = 0;
            for (int c = c0; c < c1; c++) s += m->q[(size_t)r * m->cols + c];
            m->wsum[(size_t)r * m->ngroups + g] = 128 * s;
            uint16_t h;
            memcpy(&h, (const uint8_t *)m->scale + 2 * ((size_t)r * m->ngroups + g), 2);
            m->fscale[(size_t)r * m->ngroups + g] = half_to_float(h);
        }
}

void qmat_free(sc_qmat *m) {
    free(m->fscale);
    free(m->wsum);
    m->fscale = NULL;
    m->wsum = NULL;
}

void qmat_dequant_rows(const sc_qmat *m, int r0, int r1, float *out) {
#pragma omp parallel for schedule(static)
    for (int r = r0; r < r1; r++)
        for (int g = 0; g < m->ngroups; g++) { /* a group at a time: one scale, a loop the compiler vectorizes */
            int c0 = g * m->group, c1 = c0 + m->group < m->cols ? c0 + m->group : m->cols;
            const int8_t *q = m->q + (size_t)r * m->cols;
            float s = m->fscale[(size_t)r * m->ngroups + g], *o = out + (size_t)(r - r0) * m->cols;
            for (int c = c0; c < c1; c++) o[c] = (float)q[c] * s;
        }
}

void act_quant(const float *x, int cols, int group, uint8_t *xq, float *xs) {
    int G = group <= 0 || group > cols ? cols : group, ng = quant_ngroups(cols, group);
    for (int g = 0; g < ng; g++) {
        int c0 = g * G, c1 = c0 + G < cols ? c0 + G : cols;
        float amax = 0;
        for (int c = c0; c < c1; c++) amax = fabsf(x[c]) > amax ? fabsf(x[c]) : amax;
        float s = amax / 127.0f, inv = s > 0 ? 1.0f / s : 0;
        xs[g] = s;
        for (int c = c0; c < c1; c++) xq[c] = (uint8_t)((int)rintf(x[c] * inv) + 128);
    }
}

enum { QPF = 8192 }; /* software prefetch distance of the decode kernel, bytes */

/* sum over n of a[i] * w[i] with a unsigned, w signed */
static inline int32_t dot_u8s8(const uint8_t *a, const int8_t *w, int n) {
    int i = 0;
    int32_t s = 0;
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    __m512i acc = _mm512_setzero_si512();
    for (; i + 64 <= n; i += 64)
        acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(a + i), _mm512_loadu_si512(w + i));
    s += _mm512_reduce_add_epi32(acc);
#endif
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    __m256i acc2 = _mm256_setzero_si256();
    for (; i + 32 <= n; i += 32)
        acc2 = _mm256_dpbusd_epi32(acc2, _mm256_loadu_si256((const __m256i *)(a + i)),
                                   _mm256_loadu_si256((const __m256i *)(w + i)));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc2), _mm256_extracti128_si256(acc2, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    s += _mm_cvtsi128_si32(h);
#elif defined(__AVX2__)
    /* no VNNI: widen to i16 and multiply-add pairs (exact: |a*w| <= 255*127, pair sums fit i32) */
    __m256i acc2 = _mm256_setzero_si256();
    for (; i + 16 <= n; i += 16) {
        __m256i av = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + i)));
        acc2 = _mm256_add_epi32(acc2, _mm256_madd_epi16(av, wv));
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc2), _mm256_extracti128_si256(acc2, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    s += _mm_cvtsi128_si32(h);
#endif
    for (; i < n; i++) s += (int32_t)a[i] * w[i];
    return s;
}

const char *quant_kernel_name(void) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    return "avx512-vnni";
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return "avx-vnni";
#elif defined(__AVX2__)
    return "avx2";
#else
    return "scalar";
#endif
}

static inline float qrow_dot(const sc_qmat *m, int r, const uint8_t *xq, const float *xs) {
    const int8_t *w = m->q + (size_t)r * m->cols;
    const float *fs = m->fscale + (size_t)r * m->ngroups;
    const int32_t *ws = m->wsum + (size_t)r * m->ngroups;
    float y = 0;
    for (int g = 0; g < m->ngroups; g++) {
        int c0 = g * m->group, n = c0 + m->group < m->cols ? m->group : m->cols - c0;
        y += fs[g] * xs[g] * (float)(dot_u8s8(xq + c0, w + c0, n) - ws[g]);
    }
    return y;
}

/* Four rows at once: one activation load feeds four independent accumulators, which hides vpdpbusd's latency
 * (a single row is one dependent chain) and shares the horizontal sums. Groups must be multiples of 64. */
static inline void qrow4_dot(const sc_qmat *m, int r, const uint8_t *xq, const float *xs, float *y) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    size_t C = (size_t)m->cols, ng = (size_t)m->ngroups;
    const int8_t *w = m->q + (size_t)r * C;
    /* the four rows are 4*C contiguous bytes: prefetch that stream linearly, QPF bytes ahead (4 lines per 64
     * columns). Measured by thread CPU time on the 304m shapes: strided prefetches of rows r+8..r+11 streamed
     * 33 GB/s a core, the linear stream 8 KiB ahead 39-40 GB/s, whatever the alignment. Prefetches past the end
     * of the matrix never fault. */
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
#else
    for (int k = 0; k < 4; k++) y[k] = qrow_dot(m, r + k, xq, xs);
#endif
}

/* rows [r0, r1) of one token */
static inline void qrows_dot(const sc_qmat *m, int r0, int r1, const uint8_t *xq, const float *xs, float *y) {
    int r = r0;
    if (m->group % 64 == 0 && m->cols % m->group == 0)
        for (; r + 4 <= r1; r += 4) qrow4_dot(m, r, xq, xs, y + r);
    for (; r < r1; r++) y[r] = qrow_dot(m, r, xq, xs);
}

void qmat_matvec(const sc_qmat *m, const uint8_t *xq, const float *xs, float *y) {
    float *ys[1] = {y};
    qmat_matvec_multi(&m, 1, xq, xs, ys);
}

/* Decode: the rows of all nm matrices are one pool of QCHUNK-row work items, taken dynamically. One parallel
 * region per input instead of one per matrix (q, k, v share theirs; gate and up theirs): each region is a wake-up
 * and a join of the team. Dynamic items: a thread the scheduler preempts (2 cores shared with other jobs) no
 * longer holds back half of the matrix, the other thread takes its items. Every row is computed by the same code
 * whichever thread takes it, so results do not depend on the schedule. */
enum { QCHUNK = 64 };
void qmat_matvec_multi(const sc_qmat *const *m, int nm, const uint8_t *xq, const float *xs, float *const *y) {
    int first[QMULTI_MAX + 1];
    first[0] = 0;
    for (int i = 0; i < nm; i++) first[i + 1] = first[i] + (m[i]->rows + QCHUNK - 1) / QCHUNK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int item = 0; item < first[nm]; item++) {
        int i = 0;
        while (item >= first[i + 1]) i++;
        int r0 = (item - first[i]) * QCHUNK, r1 = r0 + QCHUNK < m[i]->rows ? r0 + QCHUNK : m[i]->rows;
        qrows_dot(m[i], r0, r1, xq, xs, y[i]);
    }
}

void qmat_matmul(const sc_qmat *m, const uint8_t *xq, const float *xs, float *y, int T) {
    if (T == 1) {
        qmat_matvec(m, xq, xs, y);
        return;
    }
    /* blocks of 16 rows stay in L1 while every token passes over them */
#pragma omp parallel for schedule(static)
    for (int r0 = 0; r0 < m->rows; r0 += 16) {
        int r1 = r0 + 16 < m->rows ? r0 + 16 : m->rows;
        for (int t = 0; t < T; t++)
            qrows_dot(m, r0, r1, xq + (size_t)t * m->cols, xs + (size_t)t * m->ngroups, y + (size_t)t * m->rows);
    }
}
