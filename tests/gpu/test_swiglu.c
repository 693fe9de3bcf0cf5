/* test_swiglu.c — kernels/swiglu.cu against host/cpu/swiglu.c: contiguous (rows = 1) and the fused gate|up layout
 * (ld_in = 2F), including gates of +-30 and -100 where exp over/underflows (no NaN allowed). Tolerance 2e-3
 * relative L2 (one FP16 rounding of each output). */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

static void swiglu_case(sc_rng *r, int rows, int cols, int fused) {
    char name[128];
    int ld = fused ? 2 * cols : cols;
    int64_t n = (int64_t)rows * cols;
    float *gu = gt_randn_half(r, (int64_t)rows * ld * (fused ? 1 : 2), 2.0);
    if (n > 3) gu[0] = 30.0f, gu[1] = -30.0f, gu[2] = -100.0f;
    const float *gate = gu, *up = fused ? gu + cols : gu + n;
    /* CPU views: gather to contiguous [rows, cols] */
    float *g = TU_NEW(float, n), *u = TU_NEW(float, n);
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < cols; c++) {
            g[(int64_t)i * cols + c] = gate[(int64_t)i * ld + c];
            u[(int64_t)i * cols + c] = up[(int64_t)i * ld + c];
        }
    float *out = TU_NEW(float, n), *dout = gt_randn_half(r, n, 1.0), *dg = TU_NEW(float, n), *du = TU_NEW(float, n);
    swiglu_forward(out, g, u, n);
    swiglu_backward(dg, du, dout, g, u, n);

    int64_t ntot = (int64_t)rows * ld * (fused ? 1 : 2);
    kn_half *dgu = gt_up_half(gu, ntot), *dgate = dgu, *dup = fused ? dgu + cols : dgu + n;
    kn_half *dout_d = gt_up_half(dout, n), *out_d = gt_alloc(sizeof(kn_half) * n);
    kn_half *dgrad = gt_alloc(sizeof(kn_half) * ntot), *dgg = dgrad, *dgu2 = fused ? dgrad + cols : dgrad + n;
    kn_swiglu_forward(out_d, dgate, dup, rows, cols, ld, 0);
    kn_swiglu_backward(dgg, dgu2, dout_d, dgate, dup, rows, cols, ld, 0);
    float *go = TU_NEW(float, n), *gg = TU_NEW(float, ntot), *ggc = TU_NEW(float, n), *guc = TU_NEW(float, n);
    gt_down_half(go, out_d, n);
    gt_down_half(gg, dgrad, ntot);
    const float *ggate = gg, *gup = fused ? gg + cols : gg + n;
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < cols; c++) {
            ggc[(int64_t)i * cols + c] = ggate[(int64_t)i * ld + c];
            guc[(int64_t)i * cols + c] = gup[(int64_t)i * ld + c];
        }
    snprintf(name, sizeof name, "swiglu fwd rows=%d cols=%d fused=%d", rows, cols, fused);
    tu_check(name, gt_relerr(go, out, n), 2e-3);
    snprintf(name, sizeof name, "swiglu bwd rows=%d cols=%d fused=%d: dgate", rows, cols, fused);
    tu_check(name, gt_relerr(ggc, dg, n), 2e-3);
    snprintf(name, sizeof name, "swiglu bwd rows=%d cols=%d fused=%d: dup", rows, cols, fused);
    tu_check(name, gt_relerr(guc, du, n), 2e-3);
    GT_FREE(dgu), GT_FREE(dout_d), GT_FREE(out_d), GT_FREE(dgrad);
    free(gu), free(g), free(u), free(out), free(dout), free(dg), free(du), free(go), free(gg), free(ggc), free(guc);
}

int main(void) {
    gt_require_device("test_swiglu");
    sc_rng r;
    rng_seed(&r, 13);
    swiglu_case(&r, 1, 1001, 0);
    swiglu_case(&r, 37, 352, 1);
    swiglu_case(&r, 129, 3328, 1);
    if (!gt_quick()) swiglu_case(&r, 4096, 3328, 1);
    return tu_finish("test_swiglu");
}
