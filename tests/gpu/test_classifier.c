/* test_classifier.c — kernels/classifier.cu against host/cpu/classifier.c: per-token losses, optional logits,
 * dx and dW, with ignored targets (-1 and >= V), several chunks (the last one partial), a loss scale, and the
 * forward-only call. Tolerances: losses 1e-4 and logits 1e-5 relative (FP16 inputs on both sides, FP32 GEMM);
 * dx and dW 3e-3 (the GPU's dlogits are rounded to FP16 before the two GEMMs). */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

static void cls_case(kn_blas *b, sc_rng *r, int T, int C, int V, int chunk, float loss_scale) {
    char name[160];
    float *x = gt_randn_half(r, (int64_t)T * C, 1.0), *W = gt_randn_half(r, (int64_t)V * C, 0.1);
    int32_t *tg = TU_NEW(int32_t, T);
    for (int t = 0; t < T; t++) tg[t] = (int32_t)rng_below(r, (uint64_t)V);
    if (T > 2) tg[1] = -1, tg[T - 1] = V + 5; /* ignored */
    float *losses = TU_NEW(float, T), *logits = TU_NEW(float, (int64_t)T * V), *dx = TU_NEW(float, (int64_t)T * C);
    float *dW0 = tu_randn(r, (int64_t)V * C, 0.01), *dW = tu_copy(dW0, (int64_t)V * C);
    classifier_forward_backward(losses, logits, dx, dW, x, W, tg, T, C, V, loss_scale);

    kn_half *dx_in = gt_up_half(x, (int64_t)T * C), *dWt = gt_up_half(W, (int64_t)V * C);
    kn_half *ddx = gt_alloc(sizeof(kn_half) * (size_t)T * C);
    float *dlosses = gt_alloc(sizeof(float) * T), *dlogits = gt_alloc(sizeof(float) * (size_t)T * V);
    float *ddW = gt_up_f32(dW0, (int64_t)V * C);
    int32_t *dtg = gt_up_i32(tg, T);
    void *ws = gt_alloc(kn_classifier_workspace(chunk, V));
    kn_classifier_forward_backward(b, dlosses, dlogits, ddx, ddW, 1.0f, dx_in, dWt, dtg, T, C, V, loss_scale, chunk,
                                   ws, 0);
    float *gl = TU_NEW(float, T), *glog = TU_NEW(float, (int64_t)T * V), *gdx = TU_NEW(float, (int64_t)T * C);
    float *gdW = TU_NEW(float, (int64_t)V * C);
    gt_down_f32(gl, dlosses, T);
    gt_down_f32(glog, dlogits, (int64_t)T * V);
    gt_down_half(gdx, ddx, (int64_t)T * C);
    gt_down_f32(gdW, ddW, (int64_t)V * C);
    float *aW = tu_sub(gdW, dW0, (int64_t)V * C), *rW = tu_sub(dW, dW0, (int64_t)V * C);
    snprintf(name, sizeof name, "classifier T=%d C=%d V=%d chunk=%d: losses", T, C, V, chunk);
    tu_check(name, gt_relerr(gl, losses, T), 1e-4);
    snprintf(name, sizeof name, "classifier T=%d C=%d V=%d: logits", T, C, V);
    tu_check(name, gt_relerr(glog, logits, (int64_t)T * V), 1e-5);
    snprintf(name, sizeof name, "classifier T=%d C=%d V=%d scale=%g: dx", T, C, V, loss_scale);
    tu_check(name, gt_relerr(gdx, dx, (int64_t)T * C), 3e-3);
    snprintf(name, sizeof name, "classifier T=%d C=%d V=%d: dW accumulated", T, C, V);
    tu_check(name, gt_relerr(aW, rW, (int64_t)V * C), 3e-3);
    /* forward only: losses, nothing else touched */
    float *dl2 = gt_alloc(sizeof(float) * T), *gl2 = TU_NEW(float, T);
    kn_classifier_forward_backward(b, dl2, NULL, NULL, NULL, 1.0f, dx_in, dWt, dtg, T, C, V, loss_scale, chunk, ws, 0);
    gt_down_f32(gl2, dl2, T);
    snprintf(name, sizeof name, "classifier T=%d V=%d forward only: losses", T, V);
    tu_check(name, gt_relerr(gl2, losses, T), 1e-4);
    GT_FREE(dx_in), GT_FREE(dWt), GT_FREE(ddx), GT_FREE(dlosses), GT_FREE(dlogits), GT_FREE(ddW), GT_FREE(dtg);
    GT_FREE(ws), GT_FREE(dl2);
    free(x), free(W), free(tg), free(losses), free(logits), free(dx), free(dW0), free(dW), free(gl), free(glog);
    free(gdx), free(gdW), free(aW), free(rW), free(gl2);
}

int main(void) {
    gt_require_device("test_classifier");
    sc_rng r;
    rng_seed(&r, 16);
    kn_blas *b = kn_blas_create(0, NULL, 0, NULL, 0);
    cls_case(b, &r, 1, 64, 100, 1, 1.0f);
    cls_case(b, &r, 67, 64, 1000, 16, 2.0f);   /* 5 chunks, the last of 3 rows */
    cls_case(b, &r, 33, 128, 4097, 33, 32.0f); /* V odd: FP16 dlogits row stride 2V */
    if (!gt_quick()) cls_case(b, &r, 257, 1152, 32768, 128, 32.0f);
    kn_blas_destroy(b);
    return tu_finish("test_classifier");
}
