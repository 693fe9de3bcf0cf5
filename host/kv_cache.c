/* kv_cache.c — preallocated KV cache and attention against it (see kv_cache.h). One (query row, head) pair per
 * OpenMP work item: decode has a single row, so its heads spread over the threads. FP16 rows are converted with
 * F16C where the compiler has it. */
#include "host/kv_cache.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"

const char *const kv_type_names[] = {"f16", "f32", NULL};
#include "host/half.h"

void kv_create(sc_kv *kv, int nlayers, int n_ctx, int nkv, int hd, int f16) {
    *kv = (sc_kv){.n_ctx = n_ctx, .nlayers = nlayers, .nkv = nkv, .hd = hd, .f16 = f16};
    size_t n = (size_t)nlayers * n_ctx * nkv * hd, es = f16 ? 2 : 4;
    kv->k = sc_malloc(n * es);
    kv->v = sc_malloc(n * es);
}

void kv_free(sc_kv *kv) {
    if (kv->release) kv->release(kv->owner, kv);
    else free(kv->k), free(kv->v);
    memset(kv, 0, sizeof *kv);
}

int64_t kv_bytes(const sc_kv *kv) {
    return (int64_t)2 * kv->nlayers * kv->n_ctx * kv->nkv * kv->hd * (kv->f16 ? 2 : 4);
}

void kv_store(sc_kv *kv, int l, int pos0, int T, const float *k, const float *v) {
    size_t row = (size_t)kv->nkv * kv->hd, off = ((size_t)l * kv->n_ctx + pos0) * row, n = (size_t)T * row;
    if (kv->f16) {
        uint16_t *K = (uint16_t *)kv->k + off, *V = (uint16_t *)kv->v + off;
        for (size_t i = 0; i < n; i++) K[i] = float_to_half(k[i]), V[i] = float_to_half(v[i]);
    } else {
        memcpy((float *)kv->k + off, k, n * sizeof(float));
        memcpy((float *)kv->v + off, v, n * sizeof(float));
    }
}

static inline float dot_f32(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline float dot_f16(const float *a, const uint16_t *b, int n) {
    int i = 0;
    float s = 0;
#ifdef __F16C__
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i))), acc);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    s = _mm_cvtss_f32(h);
#endif
    for (; i < n; i++) s += a[i] * half_to_float(b[i]);
    return s;
}

static inline void axpy_f16(float *y, float a, const uint16_t *x, int n) {
    int i = 0;
#ifdef __F16C__
    __m256 av = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))),
                                                _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++) y[i] += a * half_to_float(x[i]);
}

void kv_attention(const sc_kv *kv, int l, float *out, const float *q, int T, int pos0, int nh, float *scratch) {
    int hd = kv->hd, nkv = kv->nkv, group = nh / nkv;
    size_t row = (size_t)nkv * hd, base = (size_t)l * kv->n_ctx * row;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(dynamic, 1)
    for (int item = 0; item < T * nh; item++) {
        int t = item / nh, h = item % nh, kvh = h / group, p = pos0 + t;
        float *s = scratch + (size_t)omp_get_thread_num() * kv->n_ctx;
        const float *qr = q + (size_t)t * nh * hd + (size_t)h * hd;
        float *o = out + (size_t)t * nh * hd + (size_t)h * hd;
        float mx = -INFINITY;
        for (int j = 0; j <= p; j++) {
            size_t off = base + (size_t)j * row + (size_t)kvh * hd;
            s[j] = scale * (kv->f16 ? dot_f16(qr, (const uint16_t *)kv->k + off, hd)
                                    : dot_f32(qr, (const float *)kv->k + off, hd));
            if (s[j] > mx) mx = s[j];
        }
        float sum = 0;
        for (int j = 0; j <= p; j++) sum += (s[j] = expf(s[j] - mx));
        float inv = 1.0f / sum;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int j = 0; j <= p; j++) {
            size_t off = base + (size_t)j * row + (size_t)kvh * hd;
            if (kv->f16) axpy_f16(o, s[j] * inv, (const uint16_t *)kv->v + off, hd);
            else {
                const float *vr = (const float *)kv->v + off;
                float a = s[j] * inv;
                for (int d = 0; d < hd; d++) o[d] += a * vr[d];
            }
        }
    }
}
