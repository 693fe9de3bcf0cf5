/* test_adamw.c — kernels/adamw.cu against train/adamw.c adamw_update (the same float formula; nvcc may fuse a
 * multiply-add the CPU build does not, hence 1e-6 relative rather than bit equality), with and without weight
 * decay, at steps 1 and 1000; the FP16 copy must be the rounding of the updated FP32 weights. */
#include "train/adamw.h"
#include "tests/gpu/gpu_test.h"

static void adamw_case(sc_rng *r, int64_t n, float wd, int64_t step) {
    char name[128];
    adamw_hparams h = {.lr = 3e-4f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = wd, .t = step};
    float *p = tu_randn(r, n, 0.02), *g = tu_randn(r, n, 1.0), *m = tu_randn(r, n, 0.1), *v = tu_randn(r, n, 0.1);
    for (int64_t i = 0; i < n; i++) v[i] = v[i] * v[i];
    float *dp = gt_up_f32(p, n), *dg = gt_up_f32(g, n), *dm = gt_up_f32(m, n), *dv = gt_up_f32(v, n);
    kn_half *dp16 = gt_alloc(sizeof(kn_half) * (size_t)n);
    float grad_mul = 1.0f / 512.0f;
    adamw_update(p, g, m, v, n, grad_mul, wd, &h);
    kn_adamw_update(dp, dg, dm, dv, dp16, n, grad_mul, wd, h.lr, h.beta1, h.beta2, h.eps, h.t, 0);
    float *gp = TU_NEW(float, n), *gm = TU_NEW(float, n), *gv = TU_NEW(float, n), *gp16 = TU_NEW(float, n);
    gt_down_f32(gp, dp, n);
    gt_down_f32(gm, dm, n);
    gt_down_f32(gv, dv, n);
    gt_down_half(gp16, dp16, n);
    snprintf(name, sizeof name, "adamw n=%lld wd=%g t=%lld: params", (long long)n, wd, (long long)step);
    tu_check(name, gt_relerr(gp, p, n), 1e-6);
    snprintf(name, sizeof name, "adamw t=%lld: m", (long long)step);
    tu_check(name, gt_relerr(gm, m, n), 1e-6);
    snprintf(name, sizeof name, "adamw t=%lld: v", (long long)step);
    tu_check(name, gt_relerr(gv, v, n), 1e-6);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += gp16[i] != half_to_float(float_to_half(gp[i]));
    snprintf(name, sizeof name, "adamw t=%lld: FP16 copy is the rounded FP32 weight", (long long)step);
    tu_check(name, (double)bad, 0.0);
    GT_FREE(dp), GT_FREE(dg), GT_FREE(dm), GT_FREE(dv), GT_FREE(dp16);
    free(p), free(g), free(m), free(v), free(gp), free(gm), free(gv), free(gp16);
}

int main(void) {
    gt_require_device("test_adamw");
    sc_rng r;
    rng_seed(&r, 18);
    adamw_case(&r, 100003, 0.1f, 1);
    adamw_case(&r, 100003, 0.0f, 1000);
    return tu_finish("test_adamw");
}
