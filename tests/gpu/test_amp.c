/* test_amp.c — kernels/amp.cu: FP32 -> FP16 casts bit-identical to host/half.h (round to nearest even, overflow to
 * inf, subnormals, NaN), FP16 -> FP32 exact, unscale (exact products; the non-finite flag set only when a value is
 * inf/nan), and the sum of squares against train/adamw.c grad_sumsq (1e-12 relative), deterministic. */
#include "train/adamw.h"
#include "tests/gpu/gpu_test.h"

int main(void) {
    gt_require_device("test_amp");
    sc_rng r;
    rng_seed(&r, 17);
    int64_t n = gt_quick() ? 200003 : 5000011;
    float *x = tu_randn(&r, n, 3.0);
    float specials[] = {0.0f, -0.0f, 65504.0f, 65520.0f, 70000.0f, -1e9f, 6e-8f, 3e-8f, 1e-5f, 1.0f / 3.0f, INFINITY,
                        NAN};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) x[i] = specials[i];
    float *dx = gt_up_f32(x, n);
    kn_half *dh = gt_alloc(sizeof(kn_half) * (size_t)n);
    kn_f32_to_f16(dh, dx, n, 0);
    uint16_t *h = TU_NEW(uint16_t, n);
    GT_CHECK(cudaDeviceSynchronize());
    GT_CHECK(cudaMemcpy(h, dh, sizeof(uint16_t) * (size_t)n, cudaMemcpyDeviceToHost));
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t e = float_to_half(x[i]);
        int both_nan = (e & 0x7c00) == 0x7c00 && (e & 0x3ff) && (h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff);
        bad += h[i] != e && !both_nan;
    }
    tu_check("f32 -> f16 bit-identical to half.h (incl. inf, nan, subnormal, overflow)", (double)bad, 0.0);
    float *back = TU_NEW(float, n), *dback = gt_alloc(sizeof(float) * (size_t)n);
    kn_f16_to_f32(dback, dh, n, 0);
    gt_down_f32(back, dback, n);
    bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float e = half_to_float(h[i]);
        bad += !(back[i] == e || (isnan(back[i]) && isnan(e)));
    }
    tu_check("f16 -> f32 exact", (double)bad, 0.0);

    /* unscale: finite data -> flag 0; then one inf -> flag 1 */
    float *g = tu_randn(&r, n, 100.0), *dg = gt_up_f32(g, n), *gu = TU_NEW(float, n);
    int *dflag = gt_alloc(sizeof(int)), flag = -1;
    GT_CHECK(cudaMemset(dflag, 0, sizeof(int)));
    kn_unscale(dg, n, 1.0f / 1024.0f, dflag, 0);
    gt_down_f32(gu, dg, n);
    GT_CHECK(cudaMemcpy(&flag, dflag, sizeof(int), cudaMemcpyDeviceToHost));
    bad = 0;
    for (int64_t i = 0; i < n; i++) bad += gu[i] != g[i] * (1.0f / 1024.0f);
    tu_check("unscale: values exact", (double)bad, 0.0);
    tu_check("unscale: flag stays 0 on finite values", (double)flag, 0.0);
    float inf = INFINITY;
    GT_CHECK(cudaMemcpy(dg + n - 1, &inf, sizeof(float), cudaMemcpyHostToDevice));
    kn_unscale(dg, n, 0.5f, dflag, 0);
    GT_CHECK(cudaMemcpy(&flag, dflag, sizeof(int), cudaMemcpyDeviceToHost));
    tu_check("unscale: flag set by an inf", (double)(flag != 1), 0.0);

    /* sum of squares */
    float *s = tu_randn(&r, n, 0.01), *ds = gt_up_f32(s, n);
    double *dres = gt_alloc(sizeof(double)), res[2];
    void *ws = gt_alloc(kn_sumsq_workspace(n));
    for (int k = 0; k < 2; k++) {
        kn_sumsq(dres, ds, n, ws, 0);
        GT_CHECK(cudaDeviceSynchronize());
        GT_CHECK(cudaMemcpy(&res[k], dres, sizeof(double), cudaMemcpyDeviceToHost));
    }
    double ref = grad_sumsq(s, n);
    tu_check("sumsq vs grad_sumsq (relative)", fabs(res[0] - ref) / ref, 1e-12);
    tu_check("sumsq: two runs bit-identical", gt_bitdiff(&res[0], &res[1], sizeof(double)), 0.0);
    float nanv = NAN;
    GT_CHECK(cudaMemcpy(ds + n / 2, &nanv, sizeof(float), cudaMemcpyHostToDevice));
    kn_sumsq(dres, ds, n, ws, 0);
    GT_CHECK(cudaDeviceSynchronize());
    GT_CHECK(cudaMemcpy(&res[0], dres, sizeof(double), cudaMemcpyDeviceToHost));
    tu_check("sumsq: a NaN makes the sum non-finite", isfinite(res[0]) ? 1.0 : 0.0, 0.0);
    GT_FREE(dx), GT_FREE(dh), GT_FREE(dback), GT_FREE(dg), GT_FREE(dflag), GT_FREE(ds), GT_FREE(dres), GT_FREE(ws);
    free(x), free(h), free(back), free(g), free(gu), free(s);
    return tu_finish("test_amp");
}
