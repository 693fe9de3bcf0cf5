/* kv_cache.h — the keys and values of every layer for a whole context, allocated once up front (FP16 by default,
 * FP32 for exact comparisons), and the attention of new query rows against it. Layout [layer][position][kv*hd]. */
#ifndef SC_INFER_KV_CACHE_H
#define SC_INFER_KV_CACHE_H

#include <stdint.h>

typedef struct {
    int n_ctx, nlayers, nkv, hd, f16;
    int n;        /* positions [0, n) hold valid keys and values */
    void *k, *v;  /* uint16_t (f16) or float */
    /* set when an engine owns the memory (device KV caches): kv_free calls release(owner, kv) instead of free() */
    void *owner;
    void (*release)(void *owner, void *kv);
} sc_kv;

/* The cache types, as the --kv choice of complete, serve and infer-bench (an SC_ARG_ENUM {KV_F16, kv_type_names}):
 * a new type is one enum value here and its name in kv_type_names (kv_cache.c), in the same order. */
enum { KV_F16, KV_F32 };
extern const char *const kv_type_names[]; /* "f16", "f32", NULL */

void kv_create(sc_kv *kv, int nlayers, int n_ctx, int nkv, int hd, int f16);
void kv_free(sc_kv *kv);
int64_t kv_bytes(const sc_kv *kv);
/* Stores T rows of k and v [T, nkv*hd] for layer l at positions pos0.. */
void kv_store(sc_kv *kv, int l, int pos0, int T, const float *k, const float *v);
/* out[T, nh*hd] = causal attention of q[T, nh*hd] (rows at positions pos0..pos0+T-1) over the layer's cached
 * positions [0, pos0 + t]. scratch: omp_get_max_threads() * n_ctx floats. */
void kv_attention(const sc_kv *kv, int l, float *out, const float *q, int T, int pos0, int nh, float *scratch);

#endif
