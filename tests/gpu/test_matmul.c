/* test_matmul.c — kernels/gemm.cu against host/cpu/matmul.c: y = x W^T, dx = dy W (overwritten and accumulated),
 * dW += scale dy^T x in FP32, by each GEMM candidate forced in turn (cuBLAS GemmEx, staged SGEMM, the SIMT kernel)
 * and by the automatic choice. Inputs are FP16 values on both sides, so only the accumulation order and the FP16
 * rounding of y/dx differ: tolerance 2e-3 for FP16 outputs, 1e-5 for the FP32 dW. Then the bias add (kn_bias_forward,
 * the q/k/v, o and MLP biases of the inference engine and the training model) against bias_forward, and the bias
 * gradient (kn_bias_backward: FP32 column sums of FP16 dy, accumulated, scaled) against bias_backward, 1e-5, with
 * two runs bit-identical. */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

static const char *g_algo = "";

static void mm_case(kn_blas *b, sc_rng *r, int T, int in, int out) {
    char name[128];
    float *x = gt_randn_half(r, (int64_t)T * in, 1.0), *W = gt_randn_half(r, (int64_t)out * in, 0.05);
    float *y = TU_NEW(float, (int64_t)T * out);
    matmul_forward(y, x, W, T, in, out);
    kn_half *dx_ = gt_up_half(x, (int64_t)T * in), *dW_ = gt_up_half(W, (int64_t)out * in);
    kn_half *dy_ = gt_alloc(sizeof(kn_half) * (size_t)T * out);
    kn_matmul_forward(b, dy_, dx_, dW_, T, in, out);
    float *gy = TU_NEW(float, (int64_t)T * out);
    gt_down_half(gy, dy_, (int64_t)T * out);
    snprintf(name, sizeof name, "%s matmul fwd T=%d in=%d out=%d", g_algo, T, in, out);
    tu_check(name, gt_relerr(gy, y, (int64_t)T * out), 2e-3);

    float *dy = gt_randn_half(r, (int64_t)T * out, 1.0), *gx0 = gt_randn_half(r, (int64_t)T * in, 1.0);
    float *gW0 = tu_randn(r, (int64_t)out * in, 1.0);
    float *gx = tu_copy(gx0, (int64_t)T * in), *gW = tu_copy(gW0, (int64_t)out * in);
    matmul_backward(gx, gW, dy, x, W, T, in, out);
    kn_half *ddy = gt_up_half(dy, (int64_t)T * out), *dgx = gt_up_half(gx0, (int64_t)T * in);
    float *dgW = gt_up_f32(gW0, (int64_t)out * in);
    kn_matmul_backward(b, dgx, 1, dgW, 1.0f, ddy, dx_, dW_, T, in, out);
    float *hx = TU_NEW(float, (int64_t)T * in), *hW = TU_NEW(float, (int64_t)out * in);
    gt_down_half(hx, dgx, (int64_t)T * in);
    gt_down_f32(hW, dgW, (int64_t)out * in);
    float *aW = tu_sub(hW, gW0, (int64_t)out * in), *rW = tu_sub(gW, gW0, (int64_t)out * in);
    snprintf(name, sizeof name, "%s matmul bwd T=%d in=%d out=%d: dx accumulated", g_algo, T, in, out);
    tu_check(name, gt_relerr(hx, gx, (int64_t)T * in), 2e-3);
    snprintf(name, sizeof name, "%s matmul bwd T=%d in=%d out=%d: dW accumulated", g_algo, T, in, out);
    tu_check(name, gt_relerr(aW, rW, (int64_t)out * in), 1e-5);
    /* dx overwritten (accumulate = 0), dW with scale 2 */
    float *rx = tu_sub(gx, gx0, (int64_t)T * in);
    kn_matmul_backward(b, dgx, 0, dgW, 2.0f, ddy, dx_, dW_, T, in, out);
    float *hW2 = TU_NEW(float, (int64_t)out * in);
    gt_down_half(hx, dgx, (int64_t)T * in);
    gt_down_f32(hW2, dgW, (int64_t)out * in);
    for (int64_t i = 0; i < (int64_t)out * in; i++) hW2[i] -= hW[i], rW[i] *= 2.0f;
    snprintf(name, sizeof name, "%s matmul bwd T=%d in=%d out=%d: dx overwritten", g_algo, T, in, out);
    tu_check(name, gt_relerr(hx, rx, (int64_t)T * in), 2e-3);
    snprintf(name, sizeof name, "%s matmul bwd T=%d in=%d out=%d: dW scale 2", g_algo, T, in, out);
    tu_check(name, gt_relerr(hW2, rW, (int64_t)out * in), 1e-5);
    GT_FREE(dx_), GT_FREE(dW_), GT_FREE(dy_), GT_FREE(ddy), GT_FREE(dgx), GT_FREE(dgW);
    free(x), free(W), free(y), free(gy), free(dy), free(gx0), free(gW0), free(gx), free(gW), free(hx), free(hW);
    free(aW), free(rW), free(rx), free(hW2);
}

/* kn_bias_forward against bias_forward: y + b in FP32, one FP16 rounding */
static void bias_case(sc_rng *r, int T, int out) {
    float *y = gt_randn_half(r, (int64_t)T * out, 1.0), *b = gt_randn_half(r, out, 0.5);
    kn_half *dy = gt_up_half(y, (int64_t)T * out), *db = gt_up_half(b, out);
    bias_forward(y, b, T, out);
    kn_bias_forward(dy, db, T, out, 0);
    float *got = TU_NEW(float, (int64_t)T * out);
    gt_down_half(got, dy, (int64_t)T * out);
    char name[96];
    snprintf(name, sizeof name, "bias forward T=%d out=%d (rel L2, FP16 rounding)", T, out);
    tu_check(name, gt_relerr(got, y, (int64_t)T * out), 5e-4);
    GT_FREE(dy), GT_FREE(db);
    free(y), free(b), free(got);
}

/* kn_bias_backward against bias_backward: db += scale * sum_t dy, only the FP32 summation order differs */
static void bias_grad_case(sc_rng *r, int T, int out) {
    float *dy = gt_randn_half(r, (int64_t)T * out, 1.0), *db0 = tu_randn(r, out, 1.0), *db = tu_copy(db0, out);
    bias_backward(db, dy, T, out);
    kn_half *ddy = gt_up_half(dy, (int64_t)T * out);
    float *ddb = gt_up_f32(db0, out), *ddb2 = gt_up_f32(db0, out);
    kn_bias_backward(ddb, 1.0f, ddy, T, out, 0);
    kn_bias_backward(ddb2, 1.0f, ddy, T, out, 0);
    float *got = TU_NEW(float, out), *got2 = TU_NEW(float, out), *got3 = TU_NEW(float, out);
    gt_down_f32(got, ddb, out);
    gt_down_f32(got2, ddb2, out);
    float *a = tu_sub(got, db0, out), *ref = tu_sub(db, db0, out);
    char name[96];
    snprintf(name, sizeof name, "bias backward T=%d out=%d (accumulated)", T, out);
    tu_check(name, gt_relerr(a, ref, out), 1e-5);
    snprintf(name, sizeof name, "bias backward T=%d out=%d: two runs bit-identical", T, out);
    tu_check(name, gt_bitdiff(got, got2, sizeof(float) * (size_t)out), 0.0);
    kn_bias_backward(ddb, 2.0f, ddy, T, out, 0); /* scale 2: adds twice the sums */
    gt_down_f32(got3, ddb, out);
    for (int i = 0; i < out; i++) got3[i] -= got[i], ref[i] *= 2.0f;
    snprintf(name, sizeof name, "bias backward T=%d out=%d: scale 2", T, out);
    tu_check(name, gt_relerr(got3, ref, out), 1e-5);
    GT_FREE(ddy), GT_FREE(ddb), GT_FREE(ddb2);
    free(dy), free(db0), free(db), free(got), free(got2), free(got3), free(a), free(ref);
}

int main(void) {
    gt_require_device("test_matmul");
    sc_rng r;
    rng_seed(&r, 15);
    bias_case(&r, 1, 64);
    bias_case(&r, 37, 352); /* a prefill chunk */
    bias_case(&r, 3, 1152 + 2 * 288);
    bias_grad_case(&r, 1, 64);
    bias_grad_case(&r, 37, 100); /* columns not a multiple of the block's 32 */
    bias_grad_case(&r, 129, 1152 + 2 * 288);
    kn_blas *b = kn_blas_create(0, NULL, 0, NULL, 0);
    const kn_gemm_algo algos[] = {KN_GEMM_CUBLAS, KN_GEMM_SGEMM, KN_GEMM_SIMT, KN_GEMM_AUTO};
    for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
        kn_blas_force(b, algos[a]);
        g_algo = kn_gemm_algo_name(algos[a]);
        mm_case(b, &r, 1, 64, 64);
        mm_case(b, &r, 37, 128, 256);
        mm_case(b, &r, 129, 72, 33);
        mm_case(b, &r, 65, 1152, 1728); /* 304m: the fused qkv projection */
        if (!gt_quick()) mm_case(b, &r, 2048, 3328, 1152);
    }
    kn_blas_destroy(b);
    return tu_finish("test_matmul");
}
