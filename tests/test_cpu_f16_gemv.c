/* test_cpu_f16_gemv.c — host/cpu/f16_gemv.c (the twin of kernels/f16_gemv.cu) against a double loop over the same
 * FP16 values, for one and several rows of x. */
#include "host/cpu/ops.h"
#include "host/half.h"
#include "tests/testutil.h"

static void one(int T, int rows, int cols, sc_rng *r) {
    float *xf = tu_randn(r, (int64_t)T * cols, 1.0), *wf = tu_randn(r, (int64_t)rows * cols, 0.05);
    uint16_t *x = TU_NEW(uint16_t, T * cols), *W = TU_NEW(uint16_t, rows * cols);
    for (int i = 0; i < T * cols; i++) x[i] = float_to_half(xf[i]);
    for (int i = 0; i < rows * cols; i++) W[i] = float_to_half(wf[i]);
    float *y = TU_NEW(float, T * rows);
    double *ref = TU_NEW(double, T * rows);
    f16_gemv(y, x, W, T, rows, cols);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < rows; i++) {
            double acc = 0;
            for (int c = 0; c < cols; c++)
                acc += (double)half_to_float(x[(int64_t)t * cols + c]) * half_to_float(W[(int64_t)i * cols + c]);
            ref[(int64_t)t * rows + i] = acc;
        }
    char what[96];
    snprintf(what, sizeof what, "f16_gemv %dx%d x %d vs double (rel L2)", rows, cols, T);
    tu_check(what, tu_relerr(y, ref, T * rows), 1e-6);
    free(xf), free(wf), free(x), free(W), free(y), free(ref);
}

int main(void) {
    sc_rng r;
    rng_seed(&r, 9);
    one(1, 33, 64, &r);
    one(5, 17, 250, &r);
    return tu_finish("test_cpu_f16_gemv");
}
