/* test_int8_gemv.c — kernels/int8_gemv.cu against host/cpu/int8_gemv.c on the same values: the activation integers
 * and scales bit for bit, the dp4a product within float summation order (FP32 out) or one FP16 rounding (FP16
 * out), per row and per group; kn_int8_dequant_tile (any tile, and the whole matrix through kn_int8_dequant) bit
 * for bit; kn_int8_check refuses columns that are not a multiple of 4. */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

static void int8_case(sc_rng *r, int T, int rows, int cols, int group) {
    int G = group > 0 ? group : cols, ng = (cols + G - 1) / G;
    float *x = gt_randn_half(r, (int64_t)T * cols, 1.0);
    int8_t *W = TU_NEW(int8_t, rows * cols), *xq = TU_NEW(int8_t, T * cols), *gxq = TU_NEW(int8_t, T * cols);
    uint16_t *sc = TU_NEW(uint16_t, rows * ng);
    for (int i = 0; i < rows * cols; i++) W[i] = (int8_t)(rng_next(r) % 255 - 127);
    for (int i = 0; i < rows * ng; i++) sc[i] = float_to_half((float)(0.001 + 0.001 * (rng_next(r) % 100)));
    float *xs = TU_NEW(float, T * ng), *gxs = TU_NEW(float, T * ng);
    float *ref = TU_NEW(float, T * rows), *got = TU_NEW(float, T * rows);
    int8_act_quant(xq, xs, x, T, cols, G);
    int8_gemv(ref, xq, xs, W, sc, T, rows, cols, G);

    kn_half *d_x = gt_up_half(x, (int64_t)T * cols);
    int8_t *d_xq = gt_alloc((size_t)T * cols), *d_W = gt_alloc((size_t)rows * cols);
    kn_half *d_s = gt_alloc(sizeof(kn_half) * (size_t)rows * ng), *d_yh = gt_alloc(sizeof(kn_half) * (size_t)T * rows);
    float *d_xs = gt_alloc(sizeof(float) * (size_t)T * ng), *d_y = gt_alloc(sizeof(float) * (size_t)T * rows);
    GT_CHECK(cudaMemcpy(d_W, W, (size_t)rows * cols, cudaMemcpyHostToDevice));
    GT_CHECK(cudaMemcpy(d_s, sc, sizeof(kn_half) * (size_t)rows * ng, cudaMemcpyHostToDevice));
    kn_act_quant(d_xq, d_xs, d_x, T, cols, G, 0);
    GT_CHECK(cudaDeviceSynchronize());
    GT_CHECK(cudaMemcpy(gxq, d_xq, (size_t)T * cols, cudaMemcpyDeviceToHost));
    GT_CHECK(cudaMemcpy(gxs, d_xs, sizeof(float) * (size_t)T * ng, cudaMemcpyDeviceToHost));
    char name[128];
    snprintf(name, sizeof name, "act_quant %dx%d group %d: integers and scales = the twin's (bits)", T, cols, group);
    tu_check(name, gt_bitdiff(gxq, xq, (size_t)T * cols) + gt_bitdiff(gxs, xs, sizeof(float) * (size_t)T * ng), 0.0);
    kn_int8_gemv(NULL, d_y, d_xq, d_xs, d_W, d_s, T, rows, cols, G, 0);
    gt_down_f32(got, d_y, (int64_t)T * rows);
    snprintf(name, sizeof name, "int8_gemv fp32 out %dx%d x %d group %d vs the twin (rel L2)", rows, cols, T, group);
    tu_check(name, gt_relerr(got, ref, (int64_t)T * rows), 1e-6);
    kn_int8_gemv(d_yh, NULL, d_xq, d_xs, d_W, d_s, T, rows, cols, G, 0);
    gt_down_half(got, d_yh, (int64_t)T * rows);
    snprintf(name, sizeof name, "int8_gemv fp16 out %dx%d x %d group %d vs the twin (rel L2)", rows, cols, T, group);
    tu_check(name, gt_relerr(got, ref, (int64_t)T * rows), 1e-3);
    GT_FREE(d_x), GT_FREE(d_xq), GT_FREE(d_W), GT_FREE(d_s), GT_FREE(d_yh), GT_FREE(d_xs), GT_FREE(d_y);
    free(x), free(W), free(xq), free(gxq), free(sc), free(xs), free(gxs), free(ref), free(got);
}

/* Tiles of one matrix (edges, a single column, a single row, the whole) against the twin, bit for bit. */
static void dequant_tile_case(sc_rng *r, int rows, int cols, int group) {
    int G = group > 0 ? group : cols, ng = (cols + G - 1) / G;
    int8_t *W = TU_NEW(int8_t, rows * cols);
    uint16_t *sc = TU_NEW(uint16_t, rows * ng), *ref = TU_NEW(uint16_t, rows * cols), *got = TU_NEW(uint16_t, rows * cols);
    for (int i = 0; i < rows * cols; i++) W[i] = (int8_t)(rng_next(r) % 255 - 127);
    for (int i = 0; i < rows * ng; i++) sc[i] = float_to_half((float)(0.001 + 0.001 * (rng_next(r) % 100)));
    int8_t *d_W = gt_alloc((size_t)rows * cols);
    kn_half *d_s = gt_alloc(sizeof(kn_half) * (size_t)rows * ng), *d_o = gt_alloc(sizeof(kn_half) * (size_t)rows * cols);
    GT_CHECK(cudaMemcpy(d_W, W, (size_t)rows * cols, cudaMemcpyHostToDevice));
    GT_CHECK(cudaMemcpy(d_s, sc, sizeof(kn_half) * (size_t)rows * ng, cudaMemcpyHostToDevice));
    const int tiles[][4] = {{0, rows, 0, cols}, {rows / 3, rows / 2, cols / 4, cols / 2}, {rows - 1, 1, 0, cols},
                            {0, rows, cols - 1, 1}, {1, rows - 1, 3, cols - 5}};
    double bad = 0;
    for (int k = 0; k < 5; k++) {
        int r0 = tiles[k][0], nr = tiles[k][1], c0 = tiles[k][2], nc = tiles[k][3];
        int8_dequant_tile(ref, W, sc, cols, G, r0, nr, c0, nc);
        if (k == 0) kn_int8_dequant(d_o, d_W, d_s, rows, cols, G, 0);
        else kn_int8_dequant_tile(d_o, d_W, d_s, cols, G, r0, nr, c0, nc, 0);
        GT_CHECK(cudaDeviceSynchronize());
        GT_CHECK(cudaMemcpy(got, d_o, sizeof(uint16_t) * (size_t)nr * nc, cudaMemcpyDeviceToHost));
        bad += gt_bitdiff(got, ref, sizeof(uint16_t) * (size_t)nr * nc);
    }
    char name[128];
    snprintf(name, sizeof name, "int8_dequant_tile %dx%d group %d: 5 tiles = the twin's (bits)", rows, cols, group);
    tu_check(name, bad, 0.0);
    GT_FREE(d_W), GT_FREE(d_s), GT_FREE(d_o);
    free(W), free(sc), free(ref), free(got);
}

int main(void) {
    gt_require_device("test_int8_gemv");
    sc_rng r;
    rng_seed(&r, 31);
    int8_case(&r, 1, 37, 128, 0);
    int8_case(&r, 3, 19, 256, 32);
    int8_case(&r, 2, 11, 200, 64); /* a partial last group */
    if (!gt_quick()) int8_case(&r, 8, 3328, 1152, 64);
    dequant_tile_case(&r, 37, 128, 0);
    dequant_tile_case(&r, 19, 200, 64); /* per-group scales, a partial last group */
    int rc = kn_int8_check(130, 32);
    tu_check("kn_int8_check: 130 columns refused with a message",
             rc == -1 && strstr(kn_last_error(), "multiples of 4") ? 0.0 : 1.0, 0.0);
    return tu_finish("test_int8_gemv");
}
