/* kv_cache.h — the keys and values of every layer for a whole context, allocated once up front, and the attention
 * of new query rows against it. Layout [layer][position][kv*hd]. Types (--kv): f16 (default), f32 (exact
 * comparisons), and two quantized ones that shrink the cache for long contexts on small cards:
 *   q8: int8 values, one FP16 scale per block of qb values (|x| max / 127, symmetric; like GGML's Q8_0)
 *   q4: 4-bit values, one FP16 scale per block (GGML's Q4_0: the value of largest magnitude maps to -8, so
 *       sixteen levels (q - 8) * d); two values per byte, element 2i in the low nibble of byte i.
 * A block never crosses a head nor a position: each token's row is quantized on its own when it is stored, so
 * rolling the cache back (speculative decoding) and overwriting positions needs no re-quantization. qb is the
 * largest of 32, 24, 16, 8 that divides head_dim (128 -> 32, 72 -> 24, 80 -> 16). Scales live in their own arrays
 * ks, vs [layer][position][kv*hd / qb]. */
#ifndef SC_INFER_KV_CACHE_H
#define SC_INFER_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { SC_KV_F16, SC_KV_F32, SC_KV_Q8, SC_KV_Q4, SC_KV_NTYPES } sc_kv_type;
/* The one list of --kv names, index = sc_kv_type, NULL-terminated (an SC_ARG_ENUM's names). */
extern const char *const kv_type_names[SC_KV_NTYPES + 1];

typedef struct {
    int n_ctx, nlayers, nkv, hd;
    int type;     /* sc_kv_type */
    int qb;       /* values per scale (q8, q4) */
    int n;        /* positions [0, n) hold valid keys and values */
    void *k, *v;  /* uint16_t (f16), float (f32), int8_t (q8) or packed nibbles (q4) */
    uint16_t *ks, *vs; /* q8, q4: FP16 scales [layer][position][kv*hd / qb]; NULL otherwise */
    /* set when an engine owns the memory (device KV caches): kv_free calls release(owner, kv) instead of free() */
    void *owner;
    void (*release)(void *owner, void *kv);
} sc_kv;

/* Values per scale for head_dim hd: the largest of 32, 24, 16, 8 dividing it; 0 when none does (q8/q4 refused). */
int kv_block(int hd);
/* Bytes of one position of one layer's keys (the same for values) in a cache of this type, scales included. */
size_t kv_row_bytes(int type, int nkv, int hd);
/* Bytes of the value part alone (without scales) of one position row of n values. */
size_t kv_data_bytes(int type, size_t n);
/* Fails (sc_error naming --kv and head_dim) when a quantized type cannot take this head_dim. */
int kv_type_check(int type, int hd);

void kv_create(sc_kv *kv, int nlayers, int n_ctx, int nkv, int hd, int type);
void kv_free(sc_kv *kv);
int64_t kv_bytes(const sc_kv *kv);
/* Stores T rows of k and v [T, nkv*hd] for layer l at positions pos0.. (quantized types: each row on its own) */
void kv_store(sc_kv *kv, int l, int pos0, int T, const float *k, const float *v);
/* out[T, nh*hd] = causal attention of q[T, nh*hd] (rows at positions pos0..pos0+T-1) over the layer's cached
 * positions [0, pos0 + t] (kv_attention.c). Each row's result has the same bits whatever T and the thread count.
 * scratch: kv_attention_scratch(nh, nkv, hd, omp_get_max_threads()) floats. */
void kv_attention(const sc_kv *kv, int l, float *out, const float *q, int T, int pos0, int nh, float *scratch);
size_t kv_attention_scratch(int nh, int nkv, int hd, int nthreads);
/* The attention kernel in use ("avx512", "avx2", "scalar"), the best this CPU runs unless set: set fails (-1) for
 * an unknown name or one the CPU cannot run. Not thread-safe: for tests and benchmarks, between forwards. */
const char *kv_attention_kernel_name(void);
int kv_attention_set_kernel(const char *name);

/* One block of qb values x quantized: q8 writes qb int8 to q, q4 qb/2 bytes; *scale gets the FP16 bits of d.
 * kernels/decode_attention.cu's store kernel does the same float operations. */
void kv_quant_block(int type, const float *x, int qb, void *q, uint16_t *scale);
/* n values (n a multiple of qb) of a row back to FP32: q8/q4 data + scales, f16 or f32 as they are. */
void kv_dequant_row(int type, const void *q, const uint16_t *scales, int n, int qb, float *out);
/* The cached keys (which = 0) or values (1) of layer l, positions [0, npos), as FP32 [npos][nkv*hd]. */
void kv_layer_f32(const sc_kv *kv, int l, int which, int npos, float *out);

#endif
