/* test_cpu_decode_attention.c — host/cpu/decode_attention.c (the twin of kernels/decode_attention.cu): T new rows
 * at position pos over a cache of pos + T positions give the last T rows of full causal attention
 * (host/cpu/attention.c) over those pos + T tokens, for GQA and plain heads, from an empty and a filled cache. */
#include "host/cpu/ops.h"
#include "tests/testutil.h"

static void one(int pos, int T, int nh, int nkv, int hd, sc_rng *r) {
    int N = pos + T;
    float *q = tu_randn(r, (int64_t)N * nh * hd, 1.0), *k = tu_randn(r, (int64_t)N * nkv * hd, 1.0);
    float *v = tu_randn(r, (int64_t)N * nkv * hd, 1.0), *full = TU_NEW(float, N * nh * hd);
    float *lse = TU_NEW(float, nh * N), *out = TU_NEW(float, T * nh * hd);
    attention_forward(full, lse, q, k, v, N, nh, nkv, hd);
    decode_attention(out, q + (int64_t)pos * nh * hd, k, v, T, pos, nh, nkv, hd);
    double *ref = TU_NEW(double, T * nh * hd);
    for (int i = 0; i < T * nh * hd; i++) ref[i] = full[(int64_t)pos * nh * hd + i];
    char what[128];
    snprintf(what, sizeof what, "pos %d + %d rows, %d/%d heads, hd %d: = the last rows of attention_forward", pos, T,
             nh, nkv, hd);
    tu_check(what, tu_relerr(out, ref, T * nh * hd), 1e-5);
    free(q), free(k), free(v), free(full), free(lse), free(out), free(ref);
}

int main(void) {
    sc_rng r;
    rng_seed(&r, 13);
    one(0, 1, 2, 2, 8, &r);  /* one token: its own value */
    one(0, 5, 4, 2, 16, &r); /* a prefill chunk into an empty cache */
    one(37, 1, 6, 2, 18, &r); /* decode */
    one(20, 3, 4, 1, 8, &r);
    return tu_finish("test_cpu_decode_attention");
}
