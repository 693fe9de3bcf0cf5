/* test_rmsnorm.c — kernels/rmsnorm.cu against host/cpu/rmsnorm.c: forward (with and without the fused residual
 * add, in place), backward (with and without an incoming residual gradient, aliased output), dweight with a scale.
 * Tolerances (relative L2): outputs 2e-3 (one FP16 rounding of the output, ~3e-4, plus the FP16 rounding of the
 * residual sum the GPU normalises); rstd 1e-3; dweight 1e-4 (FP32 sums of the same products). The backward is fed
 * the GPU's own resid_out and rstd so that it is measured alone. */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

static void rms_case(sc_rng *r, int T, int C, int with_delta, int with_dresid, int in_place) {
    char name[128];
    int64_t n = (int64_t)T * C;
    float eps = 1e-5f;
    float *a = gt_randn_half(r, n, 1.0), *d = with_delta ? gt_randn_half(r, n, 0.5) : NULL;
    float *w = gt_randn_half(r, C, 0.3);
    for (int c = 0; c < C; c++) w[c] = half_to_float(float_to_half(w[c] + 1.0f));
    float *ro = TU_NEW(float, n), *no = TU_NEW(float, n), *rs = TU_NEW(float, T);
    rmsnorm_forward(ro, no, rs, a, d, w, T, C, eps);

    kn_half *da = gt_up_half(a, n), *dd = d ? gt_up_half(d, n) : NULL, *dw = gt_up_half(w, C);
    kn_half *dro = in_place && !d ? da : gt_alloc(sizeof(kn_half) * n), *dno = gt_alloc(sizeof(kn_half) * n);
    float *drs = gt_alloc(sizeof(float) * T);
    kn_rmsnorm_forward(dro, dno, drs, da, dd, dw, T, C, eps, 0);
    float *gro = TU_NEW(float, n), *gno = TU_NEW(float, n), *grs = TU_NEW(float, T);
    gt_down_half(gro, dro, n);
    gt_down_half(gno, dno, n);
    gt_down_f32(grs, drs, T);
    snprintf(name, sizeof name, "rmsnorm fwd T=%d C=%d delta=%d in_place=%d: resid_out", T, C, with_delta, in_place);
    tu_check(name, gt_relerr(gro, ro, n), 2e-3);
    snprintf(name, sizeof name, "rmsnorm fwd T=%d C=%d delta=%d: norm_out", T, C, with_delta);
    tu_check(name, gt_relerr(gno, no, n), 2e-3);
    snprintf(name, sizeof name, "rmsnorm fwd T=%d C=%d delta=%d: rstd", T, C, with_delta);
    tu_check(name, gt_relerr(grs, rs, T), 1e-3);

    /* backward from the GPU's forward state */
    float *dn = gt_randn_half(r, n, 1.0), *dr = with_dresid ? gt_randn_half(r, n, 1.0) : NULL;
    float *dw0 = tu_randn(r, C, 1.0), *dwc = tu_copy(dw0, C), *dtot = TU_NEW(float, n);
    rmsnorm_backward(dtot, dwc, dn, dr, gro, grs, w, T, C);
    kn_half *ddn = gt_up_half(dn, n), *ddr = dr ? gt_up_half(dr, n) : NULL;
    kn_half *dtotal = ddr ? ddr : gt_alloc(sizeof(kn_half) * n); /* aliased with dresid when there is one */
    float *ddw = gt_up_f32(dw0, C);
    void *ws = gt_alloc(kn_rmsnorm_backward_workspace(T, C));
    kn_rmsnorm_backward(dtotal, ddw, 1.0f, ddn, ddr, dro, drs, dw, T, C, ws, 0);
    float *gtot = TU_NEW(float, n), *gdw = TU_NEW(float, C);
    gt_down_half(gtot, dtotal, n);
    gt_down_f32(gdw, ddw, C);
    float *acc_ref = tu_sub(dwc, dw0, C), *acc_gpu = tu_sub(gdw, dw0, C);
    snprintf(name, sizeof name, "rmsnorm bwd T=%d C=%d dresid=%d (aliased): dresid_total", T, C, with_dresid);
    tu_check(name, gt_relerr(gtot, dtot, n), 2e-3);
    snprintf(name, sizeof name, "rmsnorm bwd T=%d C=%d: dweight accumulated", T, C);
    tu_check(name, gt_relerr(acc_gpu, acc_ref, C), 1e-4);
    /* scale: a second call with 0.5 adds half the same sum */
    kn_rmsnorm_backward(dtotal, ddw, 0.5f, ddn, NULL, dro, drs, dw, T, C, ws, 0);
    float *gdw2 = TU_NEW(float, C), *half_ref = TU_NEW(float, C), *acc2 = TU_NEW(float, C);
    gt_down_f32(gdw2, ddw, C);
    for (int c = 0; c < C; c++) half_ref[c] = 0.5f * acc_ref[c], acc2[c] = gdw2[c] - gdw[c];
    snprintf(name, sizeof name, "rmsnorm bwd T=%d C=%d: dweight scale 0.5", T, C);
    tu_check(name, gt_relerr(acc2, half_ref, C), 1e-4);

    GT_FREE(da), GT_FREE(dw), GT_FREE(dno), GT_FREE(drs), GT_FREE(ddn), GT_FREE(ddw), GT_FREE(ws);
    if (dd) GT_FREE(dd);
    if (dro != da) GT_FREE(dro);
    GT_FREE(dtotal);
    free(a), free(d), free(w), free(ro), free(no), free(rs), free(gro), free(gno), free(grs), free(dn), free(dr);
    free(dw0), free(dwc), free(dtot), free(gtot), free(gdw), free(acc_ref), free(acc_gpu), free(gdw2), free(half_ref);
    free(acc2);
}

int main(void) {
    gt_require_device("test_rmsnorm");
    sc_rng r;
    rng_seed(&r, 11);
    rms_case(&r, 1, 64, 0, 0, 0);
    rms_case(&r, 7, 1152, 1, 1, 0);
    rms_case(&r, 37, 130, 1, 0, 0);
    rms_case(&r, 129, 65, 0, 1, 1); /* odd C, in place */
    rms_case(&r, 300, 1152, 1, 1, 0); /* several dweight row parts */
    if (!gt_quick()) rms_case(&r, 4096, 1152, 1, 1, 0);
    return tu_finish("test_rmsnorm");
}
