/* test_classifier.c — kernels/classifier.cu against host/cpu/classifier.c: per-token losses, optional logits,
 * dx and dW, with ignored targets (-1 and >= V), several chunks (the last one partial), a loss scale, and the
 * forward-only call; the INT8-weight variant (kn_classifier_forward_backward_q8: vocabulary tiles for the logits,
 * column tiles for dx, the smallest scratch it allows) against the twin on the dequantized weight. Tolerances: losses 1e-4 and logits 1e-5 relative (FP16 inputs on both sides, FP32 GEMM);
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

/* W as per-row INT8: the twin runs on int8_dequant_tile's FP16 values of the whole matrix, the kernel on tiles of
 * `tile` halves (max(V, C): one vocabulary row-block of tile / C rows, dx in tile / V columns at a time). */
static void cls_q8_case(kn_blas *b, sc_rng *r, int T, int C, int V, int chunk, int64_t tile) {
    char name[160];
    float *x = gt_randn_half(r, (int64_t)T * C, 1.0), *W = TU_NEW(float, (int64_t)V * C);
    int8_t *q = TU_NEW(int8_t, (int64_t)V * C);
    uint16_t *sc = TU_NEW(uint16_t, V), *w16 = TU_NEW(uint16_t, (int64_t)V * C);
    for (int64_t i = 0; i < (int64_t)V * C; i++) q[i] = (int8_t)(rng_next(r) % 255 - 127);
    for (int i = 0; i < V; i++) sc[i] = float_to_half((float)(0.0005 + 0.00001 * (rng_next(r) % 100)));
    int8_dequant_tile(w16, q, sc, C, 0, 0, V, 0, C);
    for (int64_t i = 0; i < (int64_t)V * C; i++) W[i] = half_to_float(w16[i]);
    int32_t *tg = TU_NEW(int32_t, T);
    for (int t = 0; t < T; t++) tg[t] = (int32_t)rng_below(r, (uint64_t)V);
    if (T > 2) tg[1] = -1;
    float *losses = TU_NEW(float, T), *logits = TU_NEW(float, (int64_t)T * V), *dx = TU_NEW(float, (int64_t)T * C);
    classifier_forward_backward(losses, logits, dx, NULL, x, W, tg, T, C, V, 8.0f);

    kn_half *dx_in = gt_up_half(x, (int64_t)T * C), *ddx = gt_alloc(sizeof(kn_half) * (size_t)T * C);
    kn_half *d_s = gt_alloc(sizeof(kn_half) * (size_t)V), *scratch = gt_alloc(sizeof(kn_half) * (size_t)tile);
    int8_t *d_q = gt_alloc((size_t)V * C);
    GT_CHECK(cudaMemcpy(d_q, q, (size_t)V * C, cudaMemcpyHostToDevice));
    GT_CHECK(cudaMemcpy(d_s, sc, sizeof(kn_half) * (size_t)V, cudaMemcpyHostToDevice));
    float *dlosses = gt_alloc(sizeof(float) * T), *dlogits = gt_alloc(sizeof(float) * (size_t)T * V);
    int32_t *dtg = gt_up_i32(tg, T);
    void *ws = gt_alloc(kn_classifier_workspace(chunk, V));
    kn_int8_mat m = {d_q, d_s, C, scratch, tile};
    kn_classifier_forward_backward_q8(b, dlosses, dlogits, ddx, dx_in, &m, dtg, T, C, V, 8.0f, chunk, ws, 0);
    float *gl = TU_NEW(float, T), *glog = TU_NEW(float, (int64_t)T * V), *gdx = TU_NEW(float, (int64_t)T * C);
    gt_down_f32(gl, dlosses, T);
    gt_down_f32(glog, dlogits, (int64_t)T * V);
    gt_down_half(gdx, ddx, (int64_t)T * C);
    snprintf(name, sizeof name, "classifier int8 W T=%d C=%d V=%d tile=%lld: losses", T, C, V, (long long)tile);
    tu_check(name, gt_relerr(gl, losses, T), 1e-4);
    snprintf(name, sizeof name, "classifier int8 W T=%d C=%d V=%d: logits", T, C, V);
    tu_check(name, gt_relerr(glog, logits, (int64_t)T * V), 1e-5);
    snprintf(name, sizeof name, "classifier int8 W T=%d C=%d V=%d: dx", T, C, V);
    tu_check(name, gt_relerr(gdx, dx, (int64_t)T * C), 3e-3);
    GT_FREE(dx_in), GT_FREE(ddx), GT_FREE(d_s), GT_FREE(scratch), GT_FREE(d_q), GT_FREE(dlosses), GT_FREE(dlogits);
    GT_FREE(dtg), GT_FREE(ws);
    free(x), free(W), free(q), free(sc), free(w16), free(tg), free(losses), free(logits), free(dx), free(gl);
    free(glog), free(gdx);
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
    cls_q8_case(b, &r, 37, 64, 1000, 16, 1000);     /* 67 vocabulary tiles of 15 rows (the last 10), 64 dx tiles of 1 column */
    cls_q8_case(b, &r, 9, 96, 333, 9, 96 * 333 / 2); /* 2 tiles each way */
    kn_blas_destroy(b);
    return tu_finish("test_classifier");
}
