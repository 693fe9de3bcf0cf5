/* kv_cache.c — preallocated KV cache (f16, f32, q8, q4): storing rows, quantizing them, reading them back (see
 * kv_cache.h). The attention over it is kv_attention.c. */
#include "host/kv_cache.h"

#include <math.h>
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
