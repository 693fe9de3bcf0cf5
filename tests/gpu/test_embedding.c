/* test_embedding.c — kernels/embedding.cu against host/cpu/embedding.c: the gather (exact), and the scatter-add
 * backward with many repeated ids. The GPU adds each id's tokens in token order like the CPU loop, so with scale 1
 * the result should match to the last bit; the check allows 1e-6 relative. Determinism: two runs, same bits. */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

static void emb_case(sc_rng *r, int T, int C, int V, int id_range) {
    char name[128];
    int32_t *ids = TU_NEW(int32_t, T);
    for (int t = 0; t < T; t++) ids[t] = (int32_t)rng_below(r, (uint64_t)id_range);
    float *table = gt_randn_half(r, (int64_t)V * C, 1.0), *ref = TU_NEW(float, (int64_t)T * C);
    embedding_forward(ref, ids, table, T, C);
    kn_half *dtab = gt_up_half(table, (int64_t)V * C), *dout = gt_alloc(sizeof(kn_half) * (size_t)T * C);
    int32_t *dids = gt_up_i32(ids, T);
    kn_embedding_forward(dout, dids, dtab, T, C, 0);
    float *got = TU_NEW(float, (int64_t)T * C);
    gt_down_half(got, dout, (int64_t)T * C);
    snprintf(name, sizeof name, "embedding fwd T=%d C=%d V=%d (exact)", T, C, V);
    tu_check(name, gt_maxabs(got, ref, (int64_t)T * C), 0.0);

    float *g = gt_randn_half(r, (int64_t)T * C, 1.0), *dt0 = tu_randn(r, (int64_t)V * C, 1.0);
    float *dtc = tu_copy(dt0, (int64_t)V * C);
    embedding_backward(dtc, g, ids, T, C);
    int32_t *plan = TU_NEW(int32_t, kn_embedding_plan_ints(T));
    int nids = kn_embedding_plan(plan, ids, T, V);
    int32_t *dplan = gt_up_i32(plan, (int64_t)kn_embedding_plan_ints(T));
    kn_half *dg = gt_up_half(g, (int64_t)T * C);
    float *res[2];
    for (int k = 0; k < 2; k++) {
        float *dtd = gt_up_f32(dt0, (int64_t)V * C);
        kn_embedding_backward(dtd, 1.0f, dg, dplan, nids, T, C, 0);
        res[k] = TU_NEW(float, (int64_t)V * C);
        gt_down_f32(res[k], dtd, (int64_t)V * C);
        GT_FREE(dtd);
    }
    snprintf(name, sizeof name, "embedding bwd T=%d C=%d ids<%d (%d distinct)", T, C, id_range, nids);
    tu_check(name, gt_relerr(res[0], dtc, (int64_t)V * C), 1e-6);
    snprintf(name, sizeof name, "embedding bwd T=%d: two runs bit-identical", T);
    tu_check(name, gt_bitdiff(res[0], res[1], sizeof(float) * (size_t)V * C), 0.0);
    /* scale: dtable += 0.25 * dout */
    float *dtd = gt_up_f32(dt0, (int64_t)V * C), *got2 = TU_NEW(float, (int64_t)V * C);
    kn_embedding_backward(dtd, 0.25f, dg, dplan, nids, T, C, 0);
    gt_down_f32(got2, dtd, (int64_t)V * C);
    float *a = tu_sub(got2, dt0, (int64_t)V * C), *b = tu_sub(dtc, dt0, (int64_t)V * C);
    for (int64_t i = 0; i < (int64_t)V * C; i++) b[i] *= 0.25f;
    snprintf(name, sizeof name, "embedding bwd T=%d: scale 0.25", T);
    tu_check(name, gt_relerr(a, b, (int64_t)V * C), 1e-5);
    GT_FREE(dtab), GT_FREE(dout), GT_FREE(dids), GT_FREE(dplan), GT_FREE(dg), GT_FREE(dtd);
    free(ids), free(table), free(ref), free(got), free(g), free(dt0), free(dtc), free(plan), free(res[0]);
    free(res[1]), free(got2), free(a), free(b);
}

int main(void) {
    gt_require_device("test_embedding");
    sc_rng r;
    rng_seed(&r, 14);
    emb_case(&r, 1, 64, 10, 10);
    emb_case(&r, 257, 130, 1000, 20); /* ~13 tokens per id */
    emb_case(&r, 513, 1152, 4096, 4096);
    if (!gt_quick()) emb_case(&r, 4096, 1152, 32768, 300);
    return tu_finish("test_embedding");
}
