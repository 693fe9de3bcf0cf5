/* test_f16_gemv.c — kernels/f16_gemv.cu against host/cpu/f16_gemv.c on the same FP16 operands: FP32 output (the
 * logits path) within float summation order, FP16 output within one rounding; odd cols return -1 with a message. */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

static void gemv_case(sc_rng *r, int T, int rows, int cols) {
    float *x = gt_randn_half(r, (int64_t)T * cols, 1.0), *w = gt_randn_half(r, (int64_t)rows * cols, 0.05);
    uint16_t *xh = TU_NEW(uint16_t, T * cols), *wh = TU_NEW(uint16_t, rows * cols);
    for (int i = 0; i < T * cols; i++) xh[i] = float_to_half(x[i]);
    for (int i = 0; i < rows * cols; i++) wh[i] = float_to_half(w[i]);
    float *ref = TU_NEW(float, T * rows), *got = TU_NEW(float, T * rows);
    f16_gemv(ref, xh, wh, T, rows, cols);
    kn_half *d_x = gt_up_half(x, (int64_t)T * cols), *d_w = gt_up_half(w, (int64_t)rows * cols);
    float *d_y = gt_alloc(sizeof(float) * (size_t)T * rows);
    kn_half *d_yh = gt_alloc(sizeof(kn_half) * (size_t)T * rows);
    char name[128];
    int rc = kn_f16_gemv(NULL, d_y, d_x, d_w, T, rows, cols, 0);
    gt_down_f32(got, d_y, (int64_t)T * rows);
    snprintf(name, sizeof name, "f16_gemv fp32 out %dx%d x %d vs the twin (rel L2)", rows, cols, T);
    tu_check(name, rc ? INFINITY : gt_relerr(got, ref, (int64_t)T * rows), 1e-6);
    rc = kn_f16_gemv(d_yh, NULL, d_x, d_w, T, rows, cols, 0);
    gt_down_half(got, d_yh, (int64_t)T * rows);
    snprintf(name, sizeof name, "f16_gemv fp16 out %dx%d x %d vs the twin (rel L2)", rows, cols, T);
    tu_check(name, rc ? INFINITY : gt_relerr(got, ref, (int64_t)T * rows), 1e-3);
    GT_FREE(d_x), GT_FREE(d_w), GT_FREE(d_y), GT_FREE(d_yh);
    free(x), free(w), free(xh), free(wh), free(ref), free(got);
}

int main(void) {
    gt_require_device("test_f16_gemv");
    sc_rng r;
    rng_seed(&r, 21);
    gemv_case(&r, 1, 33, 64);
    gemv_case(&r, 4, 70, 250);
    gemv_case(&r, 2, 129, 1152);
    if (!gt_quick()) gemv_case(&r, 8, 3328, 1152);
    float *d_y = gt_alloc(sizeof(float) * 4);
    kn_half *d_x = gt_alloc(sizeof(kn_half) * 4 * 7);
    int rc = kn_f16_gemv(NULL, d_y, d_x, d_x, 1, 4, 7, 0);
    printf("odd cols: %d (%s)\n", rc, kn_last_error());
    tu_check("f16_gemv with 7 columns: -1 with kn_last_error naming them",
             rc == -1 && strstr(kn_last_error(), "cols 7") ? 0.0 : 1.0, 0.0);
    GT_FREE(d_y), GT_FREE(d_x);
    return tu_finish("test_f16_gemv");
}
