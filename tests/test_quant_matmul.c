/* test_quant_matmul.c — the several-token INT8 kernels of host/quant_dot.c (quant_matmul_kernel, what
 * qmat_matmul runs for verification and prefill): every kernel this CPU runs gives, for every token of a batch of
 * T = 1..16 (and 37), the scalar one-token product bit for bit, on shapes that hit the 4-row tiles and their
 * 1-row tail, token tiles of every size, groups of 32/64/128/per row, partial last groups and column tails; a row
 * range writes only its own rows. Integer dot products are exact, so any difference is a kernel bug. */
#include "host/quant.h"
#include "tests/testutil.h"

/* rows, cols, group (0 = per row) */
static const int shapes[][3] = {
    {37, 1152, 0},  /* 4-row tiles and a 1-row tail, the 304m hidden size per row */
    {16, 3328, 0},  /* one 16-row block of the FFN's down projection */
    {21, 200, 0},   /* columns past the last 64: masked tail */
    {13, 256, 64},  /* groups of one 64-byte vector */
    {10, 100, 32},  /* groups of half a vector, the last one partial (4 columns) */
    {7, 384, 128},  /* several vectors per group */
    {3, 72, 0},     /* fewer rows than a tile, fewer columns than a vector */
};
static const char *names[] = {"avx512-vnni", "avx-vnni", "avx2", "scalar"};

static void one_shape(sc_rng *r, int rows, int cols, int group) {
    enum { TMAX = 37 };
    int ng = quant_ngroups(cols, group);
    float *w = tu_randn(r, (int64_t)rows * cols, 0.05), *x = tu_randn(r, (int64_t)TMAX * cols, 1.0);
    int8_t *q = TU_NEW(int8_t, rows * cols);
    uint16_t *sc = TU_NEW(uint16_t, rows * ng);
    quant_rows(w, rows, cols, group, q, sc);
    sc_qmat m = {.rows = rows, .cols = cols, .group = group, .q = q, .scale = sc};
    qmat_prepare(&m);
    uint8_t *xq = TU_NEW(uint8_t, TMAX * cols);
    float *xs = TU_NEW(float, TMAX * ng), *ref = TU_NEW(float, TMAX * rows), *y = TU_NEW(float, TMAX * rows);
    for (int t = 0; t < TMAX; t++) act_quant(x + (size_t)t * cols, cols, group, xq + (size_t)t * cols, xs + (size_t)t * ng);
    /* the reference: the scalar kernel, one token at a time */
    quant_set_kernel("scalar");
    qrows_fn one = quant_rows_kernel();
    for (int t = 0; t < TMAX; t++) one(&m, 0, rows, xq + (size_t)t * cols, xs + (size_t)t * ng, ref + (size_t)t * rows);
    for (int k = 0; k < 4; k++) {
        if (quant_set_kernel(names[k])) continue;
        qmm_fn mm = quant_matmul_kernel();
        int diff = 0, outside = 0, Ts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, TMAX};
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
            int T = Ts[ti];
            /* all rows through qmat_matmul (its 16-row blocks), then rows [1, rows - 1) straight through the kernel */
            for (int i = 0; i < T * rows; i++) y[i] = NAN;
            qmat_matmul(&m, xq, xs, y, T);
            for (int i = 0; i < T * rows; i++) diff += memcmp(&y[i], &ref[i], sizeof(float)) != 0;
            if (rows < 3) continue;
            for (int i = 0; i < T * rows; i++) y[i] = -7.0f;
            mm(&m, 1, rows - 1, xq, xs, y, T);
            for (int t = 0; t < T; t++)
                for (int i = 0; i < rows; i++) {
                    float *v = y + (size_t)t * rows + i;
                    if (i == 0 || i == rows - 1) outside += *v != -7.0f;
                    else diff += memcmp(v, ref + (size_t)t * rows + i, sizeof(float)) != 0;
                }
        }
        char what[160];
        snprintf(what, sizeof what, "%s, %dx%d group %d, T 1..16 and %d: outputs != scalar one-token", names[k], rows,
                 cols, group, TMAX);
        tu_check(what, diff, 0);
        snprintf(what, sizeof what, "%s, %dx%d group %d: outputs written outside [r0, r1)", names[k], rows, cols, group);
        tu_check(what, outside, 0);
    }
    qmat_free(&m);
    free(w), free(x), free(q), free(sc), free(xq), free(xs), free(ref), free(y);
}

int main(void) {
    sc_rng r;
    rng_seed(&r, 15);
    const char *was = quant_kernel_name();
    for (int k = 0; k < 4; k++)
        if (quant_set_kernel(names[k])) printf("  kernel %s: not supported by this CPU, skipped\n", names[k]);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) one_shape(&r, shapes[i][0], shapes[i][1], shapes[i][2]);
    quant_set_kernel(was);
    return tu_finish("test_quant_matmul");
}
