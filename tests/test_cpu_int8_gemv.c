/* test_cpu_int8_gemv.c — host/cpu/int8_gemv.c (the twin of kernels/int8_gemv.cu): its activation integers and
 * scales equal host/quant.c's act_quant (which adds 128), its product equals qmat_matvec and the double product of
 * the dequantized operands, per row and per group (a partial last group included). */
#include "host/cpu/ops.h"
#include "host/quant.h"
#include "tests/testutil.h"

static void one(int T, int rows, int cols, int group, sc_rng *r) {
    int ng = quant_ngroups(cols, group), G = group > 0 ? group : cols;
    float *w = tu_randn(r, (int64_t)rows * cols, 0.05), *x = tu_randn(r, (int64_t)T * cols, 1.0);
    int8_t *q = TU_NEW(int8_t, rows * cols), *xq = TU_NEW(int8_t, T * cols);
    uint16_t *sc = TU_NEW(uint16_t, rows * ng);
    quant_rows(w, rows, cols, group, q, sc);
    sc_qmat m = {.rows = rows, .cols = cols, .group = group, .q = q, .scale = sc};
    qmat_prepare(&m);
    float *xs = TU_NEW(float, T * ng), *y = TU_NEW(float, T * rows), *ref = TU_NEW(float, T * rows);
    double *exact = TU_NEW(double, T * rows);
    int8_act_quant(xq, xs, x, T, cols, group);
    int8_gemv(y, xq, xs, q, sc, T, rows, cols, group);
    uint8_t *uq = TU_NEW(uint8_t, cols);
    float *us = TU_NEW(float, ng);
    int bad = 0;
    for (int t = 0; t < T; t++) {
        act_quant(x + (int64_t)t * cols, cols, group, uq, us);
        for (int c = 0; c < cols; c++) bad += (int)uq[c] - 128 != xq[(int64_t)t * cols + c];
        for (int g = 0; g < ng; g++) bad += us[g] != xs[(int64_t)t * ng + g];
        qmat_matvec(&m, uq, us, ref + (int64_t)t * rows);
        for (int i = 0; i < rows; i++) {
            double acc = 0;
            for (int c = 0; c < cols; c++)
                acc += (double)q[(int64_t)i * cols + c] * m.fscale[(int64_t)i * ng + c / G] *
                       xq[(int64_t)t * cols + c] * xs[(int64_t)t * ng + c / G];
            exact[(int64_t)t * rows + i] = acc;
        }
    }
    char what[160];
    snprintf(what, sizeof what, "%dx%d group %d: activation integers and scales as quant.c's act_quant", T, cols, group);
    tu_check(what, bad, 0);
    double diff = 0;
    for (int i = 0; i < T * rows; i++) diff = fmax(diff, fabs(y[i] - ref[i]) / (fabs(ref[i]) + 1e-3));
    snprintf(what, sizeof what, "%dx%d x %d group %d: int8_gemv vs qmat_matvec (max rel)", rows, cols, T, group);
    tu_check(what, diff, 1e-5);
    snprintf(what, sizeof what, "%dx%d x %d group %d: int8_gemv vs double (rel L2)", rows, cols, T, group);
    tu_check(what, tu_relerr(y, exact, T * rows), 1e-6);
    qmat_free(&m);
    free(w), free(x), free(q), free(xq), free(sc), free(xs), free(y), free(ref), free(exact), free(uq), free(us);
}

/* every decode kernel this CPU runs (quant_dot.c) equals the scalar one bit for bit, through qmat_matvec_multi
 * (several matrices, 64-row items), on shapes that hit the 4-row path, its row tail and the masked column tail */
static void kernels_equal(sc_rng *r) {
    static const char *names[] = {"avx512-vnni", "avx-vnni", "avx2"};
    static const int shapes[][3] = {{133, 1152, 0}, {70, 1152, 64}, {37, 100, 32}, {9, 72, 0}, {66, 200, 0}, {5, 256, 128}};
    const char *was = quant_kernel_name();
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int rows = shapes[si][0], cols = shapes[si][1], group = shapes[si][2], ng = quant_ngroups(cols, group);
        float *w = tu_randn(r, (int64_t)2 * rows * cols, 0.05), *x = tu_randn(r, cols, 1.0);
        int8_t *q = TU_NEW(int8_t, 2 * rows * cols);
        uint16_t *sc = TU_NEW(uint16_t, 2 * rows * ng);
        quant_rows(w, 2 * rows, cols, group, q, sc);
        sc_qmat m0 = {.rows = rows, .cols = cols, .group = group, .q = q, .scale = sc};
        sc_qmat m1 = {.rows = rows, .cols = cols, .group = group, .q = q + (size_t)rows * cols, .scale = sc + rows * ng};
        qmat_prepare(&m0), qmat_prepare(&m1);
        uint8_t *xq = TU_NEW(uint8_t, cols);
        float *xs = TU_NEW(float, ng), *ref = TU_NEW(float, 2 * rows), *y = TU_NEW(float, 2 * rows);
        act_quant(x, cols, group, xq, xs);
        const sc_qmat *ms[2] = {&m0, &m1};
        tu_check("scalar kernel can be chosen", quant_set_kernel("scalar"), 0);
        qmat_matvec_multi(ms, 2, xq, xs, (float *[]){ref, ref + rows});
        for (int k = 0; k < 3; k++) {
            if (quant_set_kernel(names[k])) {
                if (si == 0) printf("  kernel %s: not supported by this CPU, skipped\n", names[k]);
                continue;
            }
            qmat_matvec_multi(ms, 2, xq, xs, (float *[]){y, y + rows});
            char what[160];
            snprintf(what, sizeof what, "%s == scalar, %dx%d group %d (differing outputs)", names[k], rows, cols, group);
            int diff = 0;
            for (int i = 0; i < 2 * rows; i++) diff += memcmp(&y[i], &ref[i], sizeof(float)) != 0;
            tu_check(what, diff, 0);
        }
        qmat_free(&m0), qmat_free(&m1);
        free(w), free(x), free(q), free(sc), free(xq), free(xs), free(ref), free(y);
    }
    tu_check("an unknown kernel is refused", quant_set_kernel("avx9000") != -1, 0);
    quant_set_kernel(was);
}

int main(void) {
    sc_rng r;
    rng_seed(&r, 5);
    kernels_equal(&r);
    one(3, 37, 128, 0, &r);
    one(2, 19, 128, 32, &r);
    one(4, 11, 100, 32, &r); /* last group of 4 columns */
    /* all-zero activations: scale 0, integers 0, output 0 */
    float x[8] = {0};
    int8_t xq[8], W[16] = {1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4, -5, -6, -7, -8};
    float xs[1], y[2];
    uint16_t sc[2] = {0x3c00, 0x3c00}; /* 1.0 */
    int8_act_quant(xq, xs, x, 1, 8, 0);
    int8_gemv(y, xq, xs, W, sc, 1, 2, 8, 0);
    tu_check("zero activations: scale 0 and output 0", fabs(xs[0]) + fabs(y[0]) + fabs(y[1]), 0.0);
    return tu_finish("test_cpu_int8_gemv");
}
