/* test_decode_attention.c — kernels/decode_attention.cu's kn_decode_attention against host/cpu/decode_attention.c:
 * T new rows at position pos over a session's FP16 KV cache (layer 1 of 2, so the layer offset counts), GQA and
 * plain heads, prefill chunks and single decode rows; within one FP16 rounding of the output. */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

static void decode_case(sc_rng *r, int pos, int T, int nh, int nkv, int hd, int n_ctx) {
    int row = nkv * hd, ld = (nh + 2 * nkv) * hd, layers = 2, layer = 1;
    float *qkv = gt_randn_half(r, (int64_t)T * ld, 1.0);
    float *kc = gt_randn_half(r, (int64_t)layers * n_ctx * row, 1.0), *vc = gt_randn_half(r, (int64_t)layers * n_ctx * row, 1.0);
    float *q = TU_NEW(float, T * nh * hd), *ref = TU_NEW(float, T * nh * hd), *got = TU_NEW(float, T * nh * hd);
    for (int t = 0; t < T; t++) memcpy(q + (int64_t)t * nh * hd, qkv + (int64_t)t * ld, sizeof(float) * (size_t)nh * hd);
    const float *K = kc + (int64_t)layer * n_ctx * row, *V = vc + (int64_t)layer * n_ctx * row;
    decode_attention(ref, q, K, V, T, pos, nh, nkv, hd);

    kn_half *d_qkv = gt_up_half(qkv, (int64_t)T * ld), *d_out = gt_alloc(sizeof(kn_half) * (size_t)T * nh * hd);
    kn_kv_step st = {pos, n_ctx, gt_up_half(kc, (int64_t)layers * n_ctx * row), gt_up_half(vc, (int64_t)layers * n_ctx * row)};
    kn_kv_step *d_st = gt_alloc(sizeof st);
    GT_CHECK(cudaMemcpy(d_st, &st, sizeof st, cudaMemcpyHostToDevice));
    char name[128];
    int ok = kn_decode_attention_check(hd, n_ctx) == 0;
    if (ok) kn_decode_attention(d_out, d_qkv, d_st, layer, T, nh, nkv, hd, n_ctx, 0);
    gt_down_half(got, d_out, (int64_t)T * nh * hd);
    snprintf(name, sizeof name, "decode attention pos %d + %d rows, %d/%d heads, hd %d, ctx %d vs the twin (rel L2)", pos,
             T, nh, nkv, hd, n_ctx);
    tu_check(name, ok ? gt_relerr(got, ref, (int64_t)T * nh * hd) : INFINITY, 2e-3);
    GT_FREE(d_qkv), GT_FREE(d_out), GT_FREE(st.k), GT_FREE(st.v), GT_FREE(d_st);
    free(qkv), free(kc), free(vc), free(q), free(ref), free(got);
}

int main(void) {
    gt_require_device("test_decode_attention");
    sc_rng r;
    rng_seed(&r, 41);
    decode_case(&r, 0, 1, 2, 2, 64, 16);   /* the first token: its own value */
    decode_case(&r, 0, 7, 4, 2, 64, 16);   /* a prefill chunk into an empty cache */
    decode_case(&r, 40, 1, 16, 4, 72, 64); /* 304m's heads, one decode row */
    decode_case(&r, 9, 3, 4, 1, 128, 32);
    if (!gt_quick()) decode_case(&r, 4000, 2, 16, 4, 72, 4096);
    return tu_finish("test_decode_attention");
}
