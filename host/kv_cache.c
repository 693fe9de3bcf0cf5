/* kv_cache.c — preallocated KV cache (f16, f32, q8, q4) and attention against it (see kv_cache.h). One (query row,
 * head) pair per OpenMP work item: decode has a single row, so its heads spread over the threads. FP16 rows are
 * converted with F16C where the compiler has it; quantized rows are read block by block (scale x integer dot). */
#include "host/kv_cache.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/half.h"

const char *const kv_type_names[SC_KV_NTYPES + 1] = {"f16", "f32", "q8", "q4", NULL};

int kv_block(int hd) {
    static const int sizes[] = {32, 24, 16, 8};
    for (int i = 0; i < 4; i++)
        if (hd % sizes[i] == 0) return sizes[i];
    return 0;
}

static int kv_quantized(int type) { return type == SC_KV_Q8 || type == SC_KV_Q4; }

size_t kv_data_bytes(int type, size_t n) {
    switch (type) {
    case SC_KV_F32: return n * 4;
    case SC_KV_Q8: return n;
    case SC_KV_Q4: return n / 2;
    default: return n * 2;
    }
}

size_t kv_row_bytes(int type, int nkv, int hd) {
    size_t n = (size_t)nkv * hd;
    return kv_data_bytes(type, n) + (kv_quantized(type) ? n / (size_t)kv_block(hd) * 2 : 0);
}

int kv_type_check(int type, int hd) {
    if (type < 0 || type >= SC_KV_NTYPES) return sc_fail("--kv: unknown cache type %d", type);
    if (kv_quantized(type) && kv_block(hd) == 0)
        return sc_fail("--kv %s needs a head_dim that is a multiple of 8, got %d", kv_type_names[type], hd);
    return 0;
}

void kv_create(sc_kv *kv, int nlayers, int n_ctx, int nkv, int hd, int type) {
    *kv = (sc_kv){.n_ctx = n_ctx, .nlayers = nlayers, .nkv = nkv, .hd = hd, .type = type, .qb = kv_block(hd)};
    size_t n = (size_t)nlayers * n_ctx * nkv * hd;
    kv->k = sc_malloc(kv_data_bytes(type, n));
    kv->v = sc_malloc(kv_data_bytes(type, n));
    if (kv_quantized(type)) {
        kv->ks = sc_malloc(n / (size_t)kv->qb * 2);
        kv->vs = sc_malloc(n / (size_t)kv->qb * 2);
    }
}

void kv_free(sc_kv *kv) {
    if (kv->release) kv->release(kv->owner, kv);
    else free(kv->k), free(kv->v), free(kv->ks), free(kv->vs);
    memset(kv, 0, sizeof *kv);
}

int64_t kv_bytes(const sc_kv *kv) {
    return (int64_t)2 * kv->nlayers * kv->n_ctx * (int64_t)kv_row_bytes(kv->type, kv->nkv, kv->hd);
}

/* d rounded to FP16 first and the values quantized with that d, so that what is stored is what is read back */
void kv_quant_block(int type, const float *x, int qb, void *q, uint16_t *scale) {
    if (type == SC_KV_Q8) {
        float amax = 0.0f;
        for (int i = 0; i < qb; i++) amax = fmaxf(amax, fabsf(x[i]));
        uint16_t dh = float_to_half(amax / 127.0f);
        float d = half_to_float(dh), id = d != 0.0f ? 1.0f / d : 0.0f;
        int8_t *o = q;
        for (int i = 0; i < qb; i++) {
            float r = rintf(x[i] * id);
            o[i] = (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : r);
        }
        *scale = dh;
        return;
    }
    float m = 0.0f; /* q4: the value of largest magnitude (the first one on a tie) maps to -8 */
    for (int i = 0; i < qb; i++)
        if (fabsf(x[i]) > fabsf(m)) m = x[i];
    uint16_t dh = float_to_half(m / -8.0f);
    float d = half_to_float(dh), id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t *o = q;
    for (int i = 0; i < qb; i += 2) {
        float a = floorf(x[i] * id + 8.5f), b = floorf(x[i + 1] * id + 8.5f);
        int qa = a < 0.0f ? 0 : a > 15.0f ? 15 : (int)a, qc = b < 0.0f ? 0 : b > 15.0f ? 15 : (int)b;
        o[i / 2] = (uint8_t)(qa | qc << 4);
    }
    *scale = dh;
}

void kv_dequant_row(int type, const void *q, const uint16_t *scales, int n, int qb, float *out) {
    if (type == SC_KV_F32) {
        memcpy(out, q, (size_t)n * sizeof(float));
    } else if (type == SC_KV_F16) {
        for (int i = 0; i < n; i++) out[i] = half_to_float(((const uint16_t *)q)[i]);
    } else if (type == SC_KV_Q8) {
        const int8_t *p = q;
        for (int b = 0; b < n / qb; b++) {
            float d = half_to_float(scales[b]);
            for (int i = b * qb; i < (b + 1) * qb; i++) out[i] = (float)p[i] * d;
        }
    } else {
        const uint8_t *p = q;
        for (int b = 0; b < n / qb; b++) {
            float d = half_to_float(scales[b]);
            for (int i = b * qb; i < (b + 1) * qb; i += 2) {
                out[i] = (float)((p[i / 2] & 15) - 8) * d;
                out[i + 1] = (float)((p[i / 2] >> 4) - 8) * d;
            }
        }
    }
}

/* byte offset of (layer l, position p) in the data arrays, and index of its first scale */
static size_t kv_data_off(const sc_kv *kv, int l, int p) {
    return kv_data_bytes(kv->type, ((size_t)l * kv->n_ctx + p) * kv->nkv * kv->hd);
}
static size_t kv_scale_off(const sc_kv *kv, int l, int p) {
    return ((size_t)l * kv->n_ctx + p) * kv->nkv * kv->hd / (size_t)kv->qb;
}

void kv_layer_f32(const sc_kv *kv, int l, int which, int npos, float *out) {
    size_t row = (size_t)kv->nkv * kv->hd;
    const uint8_t *data = which ? kv->v : kv->k;
    const uint16_t *sc = which ? kv->vs : kv->ks;
    for (int p = 0; p < npos; p++)
        kv_dequant_row(kv->type, data + kv_data_off(kv, l, p), sc ? sc + kv_scale_off(kv, l, p) : NULL, (int)row,
                       kv->qb, out + (size_t)p * row);
}

void kv_store(sc_kv *kv, int l, int pos0, int T, const float *k, const float *v) {
    size_t row = (size_t)kv->nkv * kv->hd, off = ((size_t)l * kv->n_ctx + pos0) * row, n = (size_t)T * row;
    if (kv->type == SC_KV_F16) {
        uint16_t *K = (uint16_t *)kv->k + off, *V = (uint16_t *)kv->v + off;
        for (size_t i = 0; i < n; i++) K[i] = float_to_half(k[i]), V[i] = float_to_half(v[i]);
    } else if (kv->type == SC_KV_F32) {
        memcpy((float *)kv->k + off, k, n * sizeof(float));
        memcpy((float *)kv->v + off, v, n * sizeof(float));
    } else {
        int qb = kv->qb;
        uint8_t *K = (uint8_t *)kv->k + kv_data_bytes(kv->type, off), *V = (uint8_t *)kv->v + kv_data_bytes(kv->type, off);
        uint16_t *KS = kv->ks + off / qb, *VS = kv->vs + off / qb;
        size_t bb = kv_data_bytes(kv->type, (size_t)qb);
        for (size_t b = 0; b < n / qb; b++) {
            kv_quant_block(kv->type, k + b * qb, qb, K + b * bb, KS + b);
            kv_quant_block(kv->type, v + b * qb, qb, V + b * bb, VS + b);
        }
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

static inline float dot_q8(const float *a, const int8_t *b, const uint16_t *sc, int n, int qb) {
    float s = 0;
    for (int b0 = 0; b0 < n; b0 += qb) {
        float t = 0;
        for (int i = b0; i < b0 + qb; i++) t += a[i] * (float)b[i];
        s += t * half_to_float(sc[b0 / qb]);
    }
    return s;
}

static inline float dot_q4(const float *a, const uint8_t *b, const uint16_t *sc, int n, int qb) {
    float s = 0;
    for (int b0 = 0; b0 < n; b0 += qb) {
        float t = 0;
        for (int i = b0; i < b0 + qb; i += 2)
            t += a[i] * (float)((b[i / 2] & 15) - 8) + a[i + 1] * (float)((b[i / 2] >> 4) - 8);
        s += t * half_to_float(sc[b0 / qb]);
    }
    return s;
}

static inline void axpy_q8(float *y, float a, const int8_t *x, const uint16_t *sc, int n, int qb) {
    for (int b0 = 0; b0 < n; b0 += qb) {
        float ad = a * half_to_float(sc[b0 / qb]);
        for (int i = b0; i < b0 + qb; i++) y[i] += ad * (float)x[i];
    }
}

static inline void axpy_q4(float *y, float a, const uint8_t *x, const uint16_t *sc, int n, int qb) {
    for (int b0 = 0; b0 < n; b0 += qb) {
        float ad = a * half_to_float(sc[b0 / qb]);
        for (int i = b0; i < b0 + qb; i += 2) {
            y[i] += ad * (float)((x[i / 2] & 15) - 8);
            y[i + 1] += ad * (float)((x[i / 2] >> 4) - 8);
        }
    }
}

/* score of query row qr against cached key (head kvh, element offset off of its row) of any type */
static inline float kv_dot(const sc_kv *kv, const float *qr, size_t off) {
    int hd = kv->hd, qb = kv->qb;
    switch (kv->type) {
    case SC_KV_F16: return dot_f16(qr, (const uint16_t *)kv->k + off, hd);
    case SC_KV_F32: return dot_f32(qr, (const float *)kv->k + off, hd);
    case SC_KV_Q8: return dot_q8(qr, (const int8_t *)kv->k + off, kv->ks + off / qb, hd, qb);
    default: return dot_q4(qr, (const uint8_t *)kv->k + off / 2, kv->ks + off / qb, hd, qb);
    }
}

static inline void kv_axpy(const sc_kv *kv, float *o, float a, size_t off) {
    int hd = kv->hd, qb = kv->qb;
    switch (kv->type) {
    case SC_KV_F16: axpy_f16(o, a, (const uint16_t *)kv->v + off, hd); break;
    case SC_KV_F32: {
        const float *vr = (const float *)kv->v + off;
        for (int d = 0; d < hd; d++) o[d] += a * vr[d];
        break;
    }
    case SC_KV_Q8: axpy_q8(o, a, (const int8_t *)kv->v + off, kv->vs + off / qb, hd, qb); break;
    default: axpy_q4(o, a, (const uint8_t *)kv->v + off / 2, kv->vs + off / qb, hd, qb); break;
    }
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
            s[j] = scale * kv_dot(kv, qr, base + (size_t)j * row + (size_t)kvh * hd);
            if (s[j] > mx) mx = s[j];
        }
        float sum = 0;
        for (int j = 0; j <= p; j++) sum += (s[j] = expf(s[j] - mx));
        float inv = 1.0f / sum;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int j = 0; j <= p; j++) kv_axpy(kv, o, s[j] * inv, base + (size_t)j * row + (size_t)kvh * hd);
    }
}
