/* kv_attention.c — the CPU engine's attention of new query rows over the KV cache (kv_cache.h), the CPU twin of
 * kernels/decode_attention.cu. With grouped-query attention the nh/nkv query heads of a group share one KV head,
 * so a work item is (block of KV heads, block of up to KV_RB query rows): it walks the cached positions in chunks
 * of KV_CH, turns each chunk of a KV head's keys and values into an FP32 tile once (whatever the --kv type) and uses
 * the tile for every row and query head of the group, with an online softmax (running max and sum, the output
 * rescaled per chunk).
 * Before this file each (row, head) pair converted and read the whole cache on its own, with a horizontal sum per
 * score, a scalar expf per score and a load/store of the output per position.
 * Rounding depends only on a row's position, never on T or the thread count: chunks start at multiples of KV_CH
 * from position 0 and each row runs the same operations whichever rows share its item, so a verification pass of
 * K tokens gives the bits of K single steps (tests/test_infer_spec.c). The SIMD kernels (scores = q . k for 16 or
 * 8 positions at once, summed with a transposing reduction; p V accumulated in registers) are chosen at run time
 * from what the CPU reports, as quant_dot.c does, with a scalar twin. */
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "host/cpu/par.h"
#include "host/cpu/vexp.h"
#include "host/half.h"
#include "host/kv_cache.h"
#include "host/threads.h"

enum {
    KV_CH = 32, /* positions per chunk: a K and a V tile of 32 x 128 floats take 32 KB, in L1 */
    KV_RB = 8,  /* query rows per work item in a prefill: each tile conversion serves them all */
};

/* ---- cached rows to FP32 tiles ----
 * A tile is KV_CH rows of hdp floats: rows [j0, j0 + n) of one KV head as FP32 (the values kv_dequant_row gives),
 * each padded with zeros from hd to hdp, then zero rows up to nz (the kernels' score blocks of 16 or 8 rows read
 * whole blocks; rows past the last block with a valid position, and value rows past n, are never read). Positions are nkv*hd values apart (4 KB with 16
 * FP16 heads of 128), so each row can sit on a page of its own, where the hardware prefetcher does not follow: the
 * same row of the next chunk is prefetched by hand while this one is converted (rows below npf exist). */

typedef struct {
    const uint8_t *data;     /* the head's first value at position j0 */
    const uint16_t *scales;  /* its first scale (q8, q4) */
    size_t stride, sstride;  /* bytes and scales from one position to the next */
    size_t rowbytes;         /* bytes of the head's values at one position */
    int type, hd, qb, hdp;
} kv_src;

typedef void (*tile_fn)(const kv_src *src, int n, int nz, int npf, float *tile);
typedef void (*row_fn)(const uint8_t *src, const uint16_t *sc, int hd, int qb, float *out);

/* the shared loop: row() is a constant in each caller, so it is inlined there */
__attribute__((always_inline)) static inline void tile_loop(row_fn row, const kv_src *src, int n, int nz, int npf,
                                                            float *tile) {
    for (int j = 0; j < n; j++) {
        float *t = tile + (size_t)j * src->hdp;
        if (j + KV_CH < npf) {
            const uint8_t *next = src->data + (size_t)(j + KV_CH) * src->stride;
            for (size_t b = 0; b < src->rowbytes; b += 64) __builtin_prefetch(next + b);
        }
        row(src->data + (size_t)j * src->stride, src->scales ? src->scales + (size_t)j * src->sstride : NULL, src->hd,
            src->qb, t);
        for (int c = src->hd; c < src->hdp; c++) t[c] = 0.0f;
    }
    if (n < nz) memset(tile + (size_t)n * src->hdp, 0, (size_t)(nz - n) * src->hdp * sizeof(float));
}

static inline void row_f32(const uint8_t *src, const uint16_t *sc, int hd, int qb, float *out) {
    (void)sc, (void)qb;
    memcpy(out, src, (size_t)hd * sizeof(float));
}
static inline void row_f16(const uint8_t *src, const uint16_t *sc, int hd, int qb, float *out) {
    kv_dequant_row(SC_KV_F16, src, sc, hd, qb, out);
}
static inline void row_q8(const uint8_t *src, const uint16_t *sc, int hd, int qb, float *out) {
    kv_dequant_row(SC_KV_Q8, src, sc, hd, qb, out);
}
static inline void row_q4(const uint8_t *src, const uint16_t *sc, int hd, int qb, float *out) {
    kv_dequant_row(SC_KV_Q4, src, sc, hd, qb, out);
}

static void tile_scalar(const kv_src *src, int n, int nz, int npf, float *tile) {
    switch (src->type) {
    case SC_KV_F32: tile_loop(row_f32, src, n, nz, npf, tile); break;
    case SC_KV_F16: tile_loop(row_f16, src, n, nz, npf, tile); break;
    case SC_KV_Q8: tile_loop(row_q8, src, n, nz, npf, tile); break;
    default: tile_loop(row_q4, src, n, nz, npf, tile); break;
    }
}

#if defined(__x86_64__) || defined(__i386__)
#define SC_KV_X86 1
#define T256 __attribute__((target("avx2,fma,f16c")))
#define T512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define INL __attribute__((always_inline)) static inline

/* the same values as kv_dequant_row, 8 at a time (qb is a multiple of 8, so 8 values share one scale) */
INL T256 void row_f16_avx2(const uint8_t *src, const uint16_t *sc, int hd, int qb, float *out) {
    const uint16_t *p = (const uint16_t *)src;
    int i = 0;
    for (; i + 8 <= hd; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + i))));
    for (; i < hd; i++) out[i] = half_to_float(p[i]);
    (void)sc, (void)qb;
}

INL T256 void row_q8_avx2(const uint8_t *src, const uint16_t *sc, int hd, int qb, float *out) {
    for (int i = 0; i < hd; i += 8) {
        __m256 d = _mm256_set1_ps(half_to_float(sc[i / qb]));
        __m256i x = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(src + i)));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(x), d));
    }
}

/* element 2i in the low nibble of byte i: 4 bytes -> 8 values in order */
INL T256 void row_q4_avx2(const uint8_t *src, const uint16_t *sc, int hd, int qb, float *out) {
    const __m128i lowbits = _mm_set1_epi8(15);
    const __m256i eight = _mm256_set1_epi32(8);
    for (int i = 0; i < hd; i += 8) {
        int32_t four;
        memcpy(&four, src + i / 2, 4);
        __m128i x = _mm_cvtsi32_si128(four);
        __m128i lo = _mm_and_si128(x, lowbits), hi = _mm_and_si128(_mm_srli_epi16(x, 4), lowbits);
        __m256i n = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)), eight);
        __m256 d = _mm256_set1_ps(half_to_float(sc[i / qb]));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(n), d));
    }
}

INL T512 void row_f16_avx512(const uint8_t *src, const uint16_t *sc, int hd, int qb, float *out) {
    const uint16_t *p = (const uint16_t *)src;
    int i = 0;
    for (; i + 16 <= hd; i += 16)
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + i))));
    for (; i + 8 <= hd; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + i))));
    for (; i < hd; i++) out[i] = half_to_float(p[i]);
    (void)sc, (void)qb;
}

T256 static void tile_avx2(const kv_src *src, int n, int nz, int npf, float *tile) {
    switch (src->type) {
    case SC_KV_F32: tile_loop(row_f32, src, n, nz, npf, tile); break;
    case SC_KV_F16: tile_loop(row_f16_avx2, src, n, nz, npf, tile); break;
    case SC_KV_Q8: tile_loop(row_q8_avx2, src, n, nz, npf, tile); break;
    default: tile_loop(row_q4_avx2, src, n, nz, npf, tile); break;
    }
}

T512 static void tile_avx512(const kv_src *src, int n, int nz, int npf, float *tile) {
    switch (src->type) {
    case SC_KV_F32: tile_loop(row_f32, src, n, nz, npf, tile); break;
    case SC_KV_F16: tile_loop(row_f16_avx512, src, n, nz, npf, tile); break;
    case SC_KV_Q8: tile_loop(row_q8_avx2, src, n, nz, npf, tile); break;
    default: tile_loop(row_q4_avx2, src, n, nz, npf, tile); break;
    }
}
#endif

/* ---- one query row over one chunk ----
 * For the G heads of a row (q [G][hdp], already times 1/sqrt(hd)) against the tiles kt, vt: scores, the online
 * softmax update of the running max m[h] and sum l[h] over the chunk's first nv positions (the ones the row sees),
 * and o[h] = alpha o[h] + sum_j p[j] vt[j] with alpha = exp(old max - new max). s: G * KV_CH floats of workspace. */
typedef void (*chunk_fn)(const float *q, int G, const float *kt, const float *vt, int nv, int hdp, float *s,
                         float *m, float *l, float *o);

static void chunk_scalar(const float *q, int G, const float *kt, const float *vt, int nv, int hdp, float *s,
                         float *m, float *l, float *o) {
    for (int h = 0; h < G; h++) {
        const float *qh = q + (size_t)h * hdp;
        float mx = m[h], sum = 0.0f;
        for (int j = 0; j < nv; j++) {
            float a = 0.0f;
            for (int c = 0; c < hdp; c++) a = fmaf(qh[c], kt[(size_t)j * hdp + c], a);
            s[j] = a;
            mx = a > mx ? a : mx;
        }
        for (int j = 0; j < nv; j++) sum += s[j] = vexp(s[j] - mx);
        float alpha = m[h] == -INFINITY ? 0.0f : vexp(m[h] - mx);
        l[h] = l[h] * alpha + sum, m[h] = mx;
        float *oh = o + (size_t)h * hdp;
        for (int c = 0; c < hdp; c++) {
            float a = oh[c] * alpha;
            for (int j = 0; j < nv; j++) a = fmaf(s[j], vt[(size_t)j * hdp + c], a);
            oh[c] = a;
        }
    }
}

#ifdef SC_KV_X86
/* vexp.h's exp, the same operations 8 or 16 lanes at a time */
INL T256 __m256 exp_avx2(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 t = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _mm256_set1_ps(12582912.0f));
    __m256 n = _mm256_sub_ps(t, _mm256_set1_ps(12582912.0f));
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693145751953125f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(1.428606765330187045e-06f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000));
    e = _mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

INL T512 __m512 exp_avx512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _mm512_set1_ps(12582912.0f));
    __m512 n = _mm512_sub_ps(t, _mm512_set1_ps(12582912.0f));
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693145751953125f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(1.428606765330187045e-06f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    e = _mm512_slli_epi32(_mm512_add_epi32(e, _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

/* r[i] = the sum of the 8 lanes of a[i] */
INL T256 __m256 reduce8(const __m256 *a) {
    __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31));
}

INL T256 float hmax8(__m256 a) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

INL T256 float hsum8(__m256 a) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* M (1..4) registers of 8 columns, two sets of accumulators (even and odd positions) to hide the FMA latency */
INL T256 void pv_cols_avx2(float *o, __m256 al, const float *p, const float *vt, int n, int hdp, const int M) {
    __m256 a[4], b[4];
    for (int k = 0; k < M; k++) a[k] = _mm256_mul_ps(_mm256_loadu_ps(o + 8 * k), al), b[k] = _mm256_setzero_ps();
    int j = 0;
    for (; j + 2 <= n; j += 2) {
        __m256 p0 = _mm256_broadcast_ss(p + j), p1 = _mm256_broadcast_ss(p + j + 1);
        const float *v0 = vt + (size_t)j * hdp, *v1 = v0 + hdp;
        for (int k = 0; k < M; k++) {
            a[k] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(v0 + 8 * k), a[k]);
            b[k] = _mm256_fmadd_ps(p1, _mm256_loadu_ps(v1 + 8 * k), b[k]);
        }
    }
    if (j < n) {
        __m256 p0 = _mm256_broadcast_ss(p + j);
        for (int k = 0; k < M; k++) a[k] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(vt + (size_t)j * hdp + 8 * k), a[k]);
    }
    for (int k = 0; k < M; k++) _mm256_storeu_ps(o + 8 * k, _mm256_add_ps(a[k], b[k]));
}

T256 static void chunk_avx2(const float *q, int G, const float *kt, const float *vt, int nv, int hdp, float *s,
                            float *m, float *l, float *o) {
    __m256 valid[KV_CH / 8];
    for (int i = 0; i < KV_CH / 8; i++) /* lane j of block i is position 8i + j: valid when 8i + j < nv */
        valid[i] = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(nv - 8 * i),
                                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    for (int h = 0; h < G; h++) {
        const float *qh = q + (size_t)h * hdp;
        float *sh = s + h * KV_CH;
        __m256 sv[KV_CH / 8];
        /* blocks past the row's last position are masked below: their tile rows are not read */
        for (int i = 0; i < KV_CH / 8; i++) sv[i] = _mm256_setzero_ps();
        for (int j0 = 0; j0 < nv; j0 += 8) {
            __m256 acc[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
            for (int c = 0; c < hdp; c += 8) {
                __m256 qv = _mm256_loadu_ps(qh + c);
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++)
                    acc[i] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kt + (size_t)(j0 + i) * hdp + c), acc[i]);
            }
            sv[j0 / 8] = reduce8(acc);
        }
        __m256 mv = _mm256_set1_ps(m[h]);
        for (int i = 0; i < KV_CH / 8; i++) mv = _mm256_max_ps(mv, _mm256_blendv_ps(mv, sv[i], valid[i]));
        float mx = hmax8(mv);
        __m256 mxv = _mm256_set1_ps(mx), sum = _mm256_setzero_ps();
        for (int i = 0; i < KV_CH / 8; i++) {
            __m256 e = _mm256_and_ps(exp_avx2(_mm256_sub_ps(sv[i], mxv)), valid[i]);
            _mm256_storeu_ps(sh + 8 * i, e);
            sum = _mm256_add_ps(sum, e);
        }
        float alpha = m[h] == -INFINITY ? 0.0f : vexp(m[h] - mx);
        l[h] = l[h] * alpha + hsum8(sum), m[h] = mx;
        float *oh = o + (size_t)h * hdp;
        __m256 al = _mm256_set1_ps(alpha);
        for (int c = 0; c < hdp; c += 32) {
            switch ((hdp - c) / 8) {
            case 1: pv_cols_avx2(oh + c, al, sh, vt + c, nv, hdp, 1); break;
            case 2: pv_cols_avx2(oh + c, al, sh, vt + c, nv, hdp, 2); break;
            case 3: pv_cols_avx2(oh + c, al, sh, vt + c, nv, hdp, 3); break;
            default: pv_cols_avx2(oh + c, al, sh, vt + c, nv, hdp, 4); break;
            }
        }
    }
}

/* r[i] = the sum of the 16 lanes of a[i]: pairs, then quads within 128-bit lanes, then across them */
INL T512 __m512 reduce16(const __m512 *a) {
    __m512 t[8], u[4], w[2];
    for (int i = 0; i < 8; i++)
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        u[i] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 2; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

INL T512 void pv_cols_avx512(float *o, __m512 al, const float *p, const float *vt, int n, int hdp, const int M) {
    __m512 a[8], b[8];
    for (int k = 0; k < M; k++) a[k] = _mm512_mul_ps(_mm512_loadu_ps(o + 16 * k), al), b[k] = _mm512_setzero_ps();
    int j = 0;
    for (; j + 2 <= n; j += 2) {
        __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[j + 1]);
        const float *v0 = vt + (size_t)j * hdp, *v1 = v0 + hdp;
        for (int k = 0; k < M; k++) {
            a[k] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * k), a[k]);
            b[k] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(v1 + 16 * k), b[k]);
        }
    }
    if (j < n) {
        __m512 p0 = _mm512_set1_ps(p[j]);
        for (int k = 0; k < M; k++) a[k] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(vt + (size_t)j * hdp + 16 * k), a[k]);
    }
    for (int k = 0; k < M; k++) _mm512_storeu_ps(o + 16 * k, _mm512_add_ps(a[k], b[k]));
}

T512 static void chunk_avx512(const float *q, int G, const float *kt, const float *vt, int nv, int hdp, float *s,
                              float *m, float *l, float *o) {
    __mmask16 valid[KV_CH / 16]; /* lane j of block i is position 16i + j */
    for (int i = 0; i < KV_CH / 16; i++)
        valid[i] = nv - 16 * i >= 16 ? 0xFFFF : nv - 16 * i <= 0 ? 0 : (__mmask16)((1u << (nv - 16 * i)) - 1);
    for (int h = 0; h < G; h++) {
        const float *qh = q + (size_t)h * hdp;
        float *sh = s + h * KV_CH;
        __m512 sv[KV_CH / 16];
        /* blocks past the row's last position are masked below: their tile rows are not read */
        for (int i = 0; i < KV_CH / 16; i++) sv[i] = _mm512_setzero_ps();
        for (int j0 = 0; j0 < nv; j0 += 16) {
            __m512 acc[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
            for (int c = 0; c < hdp; c += 16) {
                __m512 qv = _mm512_loadu_ps(qh + c);
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    acc[i] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(kt + (size_t)(j0 + i) * hdp + c), acc[i]);
            }
            sv[j0 / 16] = reduce16(acc);
        }
        __m512 mv = _mm512_set1_ps(m[h]);
        for (int i = 0; i < KV_CH / 16; i++) mv = _mm512_mask_max_ps(mv, valid[i], mv, sv[i]);
        float mx = _mm512_reduce_max_ps(mv);
        __m512 mxv = _mm512_set1_ps(mx), sum = _mm512_setzero_ps();
        for (int i = 0; i < KV_CH / 16; i++) {
            __m512 e = _mm512_maskz_mov_ps(valid[i], exp_avx512(_mm512_sub_ps(sv[i], mxv)));
            _mm512_storeu_ps(sh + 16 * i, e);
            sum = _mm512_add_ps(sum, e);
        }
        float alpha = m[h] == -INFINITY ? 0.0f : vexp(m[h] - mx);
        l[h] = l[h] * alpha + _mm512_reduce_add_ps(sum), m[h] = mx;
        float *oh = o + (size_t)h * hdp;
        __m512 al = _mm512_set1_ps(alpha);
        for (int c = 0; c < hdp; c += 128) {
            switch ((hdp - c) / 16) {
            case 1: pv_cols_avx512(oh + c, al, sh, vt + c, nv, hdp, 1); break;
            case 2: pv_cols_avx512(oh + c, al, sh, vt + c, nv, hdp, 2); break;
            case 3: pv_cols_avx512(oh + c, al, sh, vt + c, nv, hdp, 3); break;
            case 4: pv_cols_avx512(oh + c, al, sh, vt + c, nv, hdp, 4); break;
            case 5: pv_cols_avx512(oh + c, al, sh, vt + c, nv, hdp, 5); break;
            case 6: pv_cols_avx512(oh + c, al, sh, vt + c, nv, hdp, 6); break;
            case 7: pv_cols_avx512(oh + c, al, sh, vt + c, nv, hdp, 7); break;
            default: pv_cols_avx512(oh + c, al, sh, vt + c, nv, hdp, 8); break;
            }
        }
    }
}
#endif

/* ---- choice ---- */

static const struct {
    const char *name;
    int lanes; /* head_dim is padded with zeros to a multiple of this */
    tile_fn tile;
    chunk_fn chunk;
} kernels[] = {
#ifdef SC_KV_X86
    {"avx512", 16, tile_avx512, chunk_avx512},
    {"avx2", 8, tile_avx2, chunk_avx2},
#endif
    {"scalar", 1, tile_scalar, chunk_scalar},
};
enum { NKERNELS = sizeof kernels / sizeof kernels[0] };

static int kernel_supported(int i) {
#ifdef SC_KV_X86
    __builtin_cpu_init();
    /* F16C from CPUID.1:ECX bit 29: clang's __builtin_cpu_supports does not know "f16c" (the fuzz build) */
    unsigned a, b, c, d;
    int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    if (i == 0) return avx2 && __builtin_cpu_supports("avx512f");
    if (i == 1) return avx2;
#endif
    return i == NKERNELS - 1;
}

/* picked before main() so no thread ever sees it change */
static int chosen = NKERNELS - 1;
__attribute__((constructor)) static void kv_attention_pick(void) {
    for (int i = 0; i < NKERNELS; i++)
        if (kernel_supported(i)) {
            chosen = i;
            return;
        }
}

const char *kv_attention_kernel_name(void) { return kernels[chosen].name; }

int kv_attention_set_kernel(const char *name) {
    for (int i = 0; i < NKERNELS; i++)
        if (strcmp(kernels[i].name, name) == 0) {
            if (!kernel_supported(i)) return -1;
            chosen = i;
            return 0;
        }
    return -1;
}

/* ---- the driver ---- */

static int kv_hdp(int hd) { return (hd + 15) / 16 * 16; } /* room for any kernel's padding */

/* floats of one thread's workspace: per row block the scaled queries, outputs, running max and sum of up to all
 * nh heads; the scores of one row's G heads over a chunk; the key and value tiles; slack to align the start and the
 * tiles to 64 bytes */
static size_t kv_ws_floats(int nh, int G, int hdp) {
    return 2 * (size_t)KV_RB * nh * hdp + 2 * (size_t)KV_RB * nh + (size_t)G * KV_CH + 2 * (size_t)KV_CH * hdp + 32;
}

size_t kv_attention_scratch(int nh, int nkv, int hd, int nthreads) {
    return (size_t)nthreads * kv_ws_floats(nh, nh / nkv, kv_hdp(hd));
}

/* where keys (which 0) or values (1) of KV head kvh, layer l, position j0 start */
static kv_src kv_source(const sc_kv *kv, int l, int which, int kvh, int j0, int hdp) {
    size_t rowlen = (size_t)kv->nkv * kv->hd, off = ((size_t)l * kv->n_ctx + j0) * rowlen + (size_t)kvh * kv->hd;
    const uint16_t *scales = which ? kv->vs : kv->ks;
    return (kv_src){.data = (const uint8_t *)(which ? kv->v : kv->k) + kv_data_bytes(kv->type, off),
                    .scales = scales ? scales + off / kv->qb : NULL,
                    .stride = kv_data_bytes(kv->type, rowlen),
                    .sstride = scales ? rowlen / kv->qb : 0,
                    .rowbytes = kv_data_bytes(kv->type, (size_t)kv->hd),
                    .type = kv->type, .hd = kv->hd, .qb = kv->qb, .hdp = hdp};
}

/* rows t0..t0+nr-1 (positions pos0 + t) of q, the heads of KV heads kvh0..kvh0+nb-1. For each chunk of positions
 * the KV heads go one after the other, so the chunk's rows of the cache are read whole (all nb heads), not one
 * head's slice per page, which streams at a fraction of the bandwidth. */
static void kv_attention_item(const sc_kv *kv, int l, float *out, const float *q, int t0, int nr, int pos0, int nh,
                              int kvh0, int nb, float *ws) {
    int hd = kv->hd, G = nh / kv->nkv, nbh = nb * G, ki = chosen;
    int hdp = (hd + kernels[ki].lanes - 1) / kernels[ki].lanes * kernels[ki].lanes;
    tile_fn tile = kernels[ki].tile;
    chunk_fn chunk = kernels[ki].chunk;
    float scale = 1.0f / sqrtf((float)hd);
    ws = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    /* state of (row r, local head i): index r * nbh + i; local head i is head kvh0 * G + i of q and out */
    float *qs = ws, *o = qs + (size_t)KV_RB * nbh * hdp, *m = o + (size_t)KV_RB * nbh * hdp, *lsum = m + KV_RB * nbh;
    float *s = lsum + KV_RB * nbh;
    float *kt = (float *)(((uintptr_t)(s + G * KV_CH) + 63) & ~(uintptr_t)63), *vt = kt + (size_t)KV_CH * hdp;
    for (int r = 0; r < nr; r++)
        for (int i = 0; i < nbh; i++) {
            const float *src = q + (size_t)(t0 + r) * nh * hd + (size_t)(kvh0 * G + i) * hd;
            float *dst = qs + (size_t)(r * nbh + i) * hdp;
            for (int c = 0; c < hd; c++) dst[c] = src[c] * scale;
            memset(dst + hd, 0, (size_t)(hdp - hd) * sizeof(float));
            memset(o + (size_t)(r * nbh + i) * hdp, 0, (size_t)hdp * sizeof(float));
            m[r * nbh + i] = -INFINITY, lsum[r * nbh + i] = 0.0f;
        }
    int pmax = pos0 + t0 + nr - 1;
    for (int j0 = 0; j0 <= pmax; j0 += KV_CH) {
        int nk = pmax + 1 - j0 < KV_CH ? pmax + 1 - j0 : KV_CH;
        for (int b = 0; b < nb; b++) {
            kv_src ks = kv_source(kv, l, 0, kvh0 + b, j0, hdp), vs = kv_source(kv, l, 1, kvh0 + b, j0, hdp);
            tile(&ks, nk, (nk + 15) / 16 * 16, pmax + 1 - j0, kt);
            tile(&vs, nk, nk, pmax + 1 - j0, vt);
            for (int r = 0; r < nr; r++) {
                int p = pos0 + t0 + r, i = r * nbh + b * G;
                if (p < j0) continue;
                int nv = p + 1 - j0 < KV_CH ? p + 1 - j0 : KV_CH; /* positions of this chunk the row sees */
                chunk(qs + (size_t)i * hdp, G, kt, vt, nv, hdp, s, m + i, lsum + i, o + (size_t)i * hdp);
            }
        }
    }
    for (int r = 0; r < nr; r++)
        for (int i = 0; i < nbh; i++) {
            float *dst = out + (size_t)(t0 + r) * nh * hd + (size_t)(kvh0 * G + i) * hd, inv = 1.0f / lsum[r * nbh + i];
            const float *src = o + (size_t)(r * nbh + i) * hdp;
            for (int c = 0; c < hd; c++) dst[c] = src[c] * inv;
        }
}

typedef struct {
    const sc_kv *kv;
    float *out, *scratch;
    const float *q;
    int l, T, pos0, nh, nb, nhb, nblocks, items;
    size_t per;
    atomic_int next; /* items handed out longest rows first, one at a time (a dynamic schedule) */
} kv_par;

static void kv_attention_part(void *arg, int t, int nt) {
    kv_par *a = arg;
    (void)nt;
    for (int it; (it = atomic_fetch_add_explicit(&a->next, 1, memory_order_relaxed)) < a->items;) {
        int b = a->nblocks - 1 - it / a->nhb, kvh0 = it % a->nhb * a->nb, t0 = b * KV_RB;
        int nr = a->T - t0 < KV_RB ? a->T - t0 : KV_RB;
        kv_attention_item(a->kv, a->l, a->out, a->q, t0, nr, a->pos0, a->nh, kvh0, a->nb, a->scratch + (size_t)t * a->per);
    }
}

void kv_attention(const sc_kv *kv, int l, float *out, const float *q, int T, int pos0, int nh, float *scratch) {
    int nkv = kv->nkv, nblocks = (T + KV_RB - 1) / KV_RB;
    /* a short context is not worth waking the team for; the result is the same either way, as it is for any split of
     * the KV heads into blocks: as few blocks as give every thread an item. sc_par (threads.h): the decode pool when
     * the engine holds one, else an OpenMP team; the scratch has a workspace per thread of either. */
    int par = PAR((int64_t)T * nh * (pos0 + T) * kv->hd), nt = par ? sc_par_threads() : 1, nb = nkv;
    while (nb % 2 == 0 && (nkv / nb) * nblocks < nt) nb /= 2;
    int nhb = nkv / nb;
    kv_par a = {.kv = kv, .out = out, .scratch = scratch, .q = q, .l = l, .T = T, .pos0 = pos0, .nh = nh, .nb = nb,
                .nhb = nhb, .nblocks = nblocks, .items = nhb * nblocks, .per = kv_ws_floats(nh, nh / nkv, kv_hdp(kv->hd))};
    atomic_init(&a.next, 0);
    if (par && a.items > 1) sc_par(kv_attention_part, &a);
    else kv_attention_part(&a, 0, 1);
}
