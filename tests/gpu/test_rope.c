/* test_rope.c — kernels/rope.cu against host/cpu/rope.c: forward and backward (the inverse rotation), contiguous
 * and strided rows (the q|k part of a fused qkv buffer: columns past n_heads * head_dim must stay untouched),
 * pos0 > 0, positions up to 4096; and graph safety: a CUDA graph captured once with two RoPE launches (two head
 * sizes and thetas, the position read from device memory) replays correctly at positions set between replays.
 * Tolerance 2e-3 relative L2: one FP16 rounding of the output (~3e-4) plus sincosf against the CPU's double
 * cos/sin of the same float angle. An odd head_dim or a missing table returns -1. */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

/* the device table of rope_inv_freq for (hd, theta), as the model uploads it at open */
static float *inv_freq_table(int hd, float theta) {
    float f[512];
    rope_inv_freq(f, hd, theta);
    return gt_up_f32(f, hd / 2);
}

static void rope_case(sc_rng *r, int T, int nh, int hd, int ld, int pos0) {
    char name[128];
    float *inv = inv_freq_table(hd, 10000.0f);
    int row = nh * hd;
    int64_t n = (int64_t)T * ld;
    float *x = gt_randn_half(r, n, 1.0);
    /* CPU: the contiguous [T, nh*hd] part */
    float *xc = TU_NEW(float, (int64_t)T * row);
    for (int t = 0; t < T; t++) memcpy(xc + (int64_t)t * row, x + (int64_t)t * ld, sizeof(float) * (size_t)row);
    float *ref_f = tu_copy(xc, (int64_t)T * row), *ref_b = tu_copy(xc, (int64_t)T * row);
    rope_forward(ref_f, T, nh, hd, pos0, 10000.0f);
    rope_backward(ref_b, T, nh, hd, pos0, 10000.0f);

    for (int dir = 0; dir < 2; dir++) {
        kn_half *d = gt_up_half(x, n);
        if (dir == 0) kn_rope_forward(d, inv, T, nh, hd, ld, pos0, NULL, 0);
        else kn_rope_backward(d, inv, T, nh, hd, ld, pos0, NULL, 0);
        float *g = TU_NEW(float, n), *gc = TU_NEW(float, (int64_t)T * row);
        gt_down_half(g, d, n);
        int untouched = 1;
        for (int t = 0; t < T; t++) {
            memcpy(gc + (int64_t)t * row, g + (int64_t)t * ld, sizeof(float) * (size_t)row);
            for (int c = row; c < ld; c++) untouched &= g[(int64_t)t * ld + c] == x[(int64_t)t * ld + c];
        }
        snprintf(name, sizeof name, "rope %s T=%d nh=%d hd=%d ld=%d pos0=%d", dir ? "bwd" : "fwd", T, nh, hd, ld, pos0);
        tu_check(name, gt_relerr(gc, dir ? ref_b : ref_f, (int64_t)T * row), 2e-3);
        snprintf(name, sizeof name, "rope %s ld=%d: columns past the heads untouched", dir ? "bwd" : "fwd", ld);
        tu_check(name, untouched ? 0.0 : 1.0, 0.0);
        GT_FREE(d);
        free(g), free(gc);
    }
    /* backward undoes forward (up to two FP16 roundings) */
    kn_half *d = gt_up_half(x, n);
    kn_rope_forward(d, inv, T, nh, hd, ld, pos0, NULL, 0);
    kn_rope_backward(d, inv, T, nh, hd, ld, pos0, NULL, 0);
    float *g = TU_NEW(float, n);
    gt_down_half(g, d, n);
    snprintf(name, sizeof name, "rope bwd(fwd(x)) == x T=%d hd=%d", T, hd);
    tu_check(name, gt_relerr(g, x, n), 2e-3);
    GT_FREE(d);
    GT_FREE(inv);
    free(g), free(x), free(xc), free(ref_f), free(ref_b);
}

/* One graph, captured once: copy the input rows up (from fixed host buffers), then RoPE at head_dim 72 / theta
 * 10000 and RoPE at head_dim 64 / theta 500000, each at pos0 + *pos_dev, then copy both results down. Replayed at
 * several positions (only *pos's host value and the inputs change between replays), every result must match the
 * CPU at that position. The old per-launch copy of the table from a stack array into __constant__ memory fails
 * here: on a GPU the captured copy reads a dead stack frame at replay; on the emulator it ran at capture time, so
 * the first launch of every replay rotated with the second launch's table. */
static void rope_graph_case(sc_rng *r) {
    char name[160];
    const int T = 5, nh = 3, hd_a = 72, hd_b = 64, pos0 = 2;
    const float th_a = 10000.0f, th_b = 500000.0f;
    int64_t na = (int64_t)T * nh * hd_a, nb = (int64_t)T * nh * hd_b;
    float *inv_a = inv_freq_table(hd_a, th_a), *inv_b = inv_freq_table(hd_b, th_b);
    kn_half *da = gt_alloc(sizeof(kn_half) * (size_t)na), *db = gt_alloc(sizeof(kn_half) * (size_t)nb);
    int *dpos = gt_alloc(sizeof(int));
    /* captured copies read and write pinned host memory (pageable memory cannot be captured) */
    uint16_t *ha, *hb, *oa, *ob;
    int *hp;
    GT_CHECK(cudaMallocHost((void **)&ha, sizeof(uint16_t) * (size_t)na));
    GT_CHECK(cudaMallocHost((void **)&hb, sizeof(uint16_t) * (size_t)nb));
    GT_CHECK(cudaMallocHost((void **)&oa, sizeof(uint16_t) * (size_t)na));
    GT_CHECK(cudaMallocHost((void **)&ob, sizeof(uint16_t) * (size_t)nb));
    GT_CHECK(cudaMallocHost((void **)&hp, sizeof(int)));
    cudaStream_t s;
    GT_CHECK(cudaStreamCreate(&s));
    cudaGraph_t g;
    cudaGraphExec_t ge;
    GT_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    GT_CHECK(cudaMemcpyAsync(dpos, hp, sizeof(int), cudaMemcpyHostToDevice, s));
    GT_CHECK(cudaMemcpyAsync(da, ha, sizeof(kn_half) * (size_t)na, cudaMemcpyHostToDevice, s));
    GT_CHECK(cudaMemcpyAsync(db, hb, sizeof(kn_half) * (size_t)nb, cudaMemcpyHostToDevice, s));
    kn_rope_forward(da, inv_a, T, nh, hd_a, nh * hd_a, pos0, dpos, s);
    kn_rope_forward(db, inv_b, T, nh, hd_b, nh * hd_b, pos0, dpos, s);
    GT_CHECK(cudaMemcpyAsync(oa, da, sizeof(kn_half) * (size_t)na, cudaMemcpyDeviceToHost, s));
    GT_CHECK(cudaMemcpyAsync(ob, db, sizeof(kn_half) * (size_t)nb, cudaMemcpyDeviceToHost, s));
    GT_CHECK(cudaStreamEndCapture(s, &g));
    GT_CHECK(cudaGraphInstantiate(&ge, g, 0));
    const int positions[] = {0, 9, 1000, 4090};
    for (int k = 0; k < 4; k++) {
        float *xa = gt_randn_half(r, na, 1.0), *xb = gt_randn_half(r, nb, 1.0);
        for (int64_t i = 0; i < na; i++) ha[i] = float_to_half(xa[i]);
        for (int64_t i = 0; i < nb; i++) hb[i] = float_to_half(xb[i]);
        int hpos = *hp = positions[k];
        GT_CHECK(cudaGraphLaunch(ge, s));
        GT_CHECK(cudaStreamSynchronize(s));
        rope_forward(xa, T, nh, hd_a, pos0 + hpos, th_a);
        rope_forward(xb, T, nh, hd_b, pos0 + hpos, th_b);
        float *ga = TU_NEW(float, na), *gb = TU_NEW(float, nb);
        for (int64_t i = 0; i < na; i++) ga[i] = half_to_float(oa[i]);
        for (int64_t i = 0; i < nb; i++) gb[i] = half_to_float(ob[i]);
        snprintf(name, sizeof name, "rope in a captured graph, replay %d at position %d: hd 72 theta 1e4 | hd 64 theta 5e5",
                 k + 1, pos0 + hpos);
        tu_check(name, fmax(gt_relerr(ga, xa, na), gt_relerr(gb, xb, nb)), 2e-3);
        free(xa), free(xb), free(ga), free(gb);
    }
    GT_CHECK(cudaGraphExecDestroy(ge));
    GT_CHECK(cudaGraphDestroy(g));
    GT_CHECK(cudaStreamDestroy(s));
    GT_FREE(inv_a), GT_FREE(inv_b), GT_FREE(da), GT_FREE(db), GT_FREE(dpos);
    GT_CHECK(cudaFreeHost(ha));
    GT_CHECK(cudaFreeHost(hb));
    GT_CHECK(cudaFreeHost(oa));
    GT_CHECK(cudaFreeHost(ob));
    GT_CHECK(cudaFreeHost(hp));
}

int main(void) {
    gt_require_device("test_rope");
    sc_rng r;
    rng_seed(&r, 12);
    rope_case(&r, 1, 1, 64, 64, 0);
    rope_case(&r, 37, 4, 72, 4 * 72, 0);
    rope_case(&r, 17, 3, 128, 5 * 128, 100); /* strided: q|k heads of a fused buffer */
    rope_case(&r, 65, 20, 72, 24 * 72, 7);   /* 304m: 16 q + 4 k heads rotated, 4 v heads untouched */
    rope_case(&r, 33, 2, 80, 2 * 80 + 2, 4000);
    if (!gt_quick()) rope_case(&r, 4096, 20, 72, 24 * 72, 0);
    rope_graph_case(&r);
    /* what the kernel cannot do: -1 and a message, no exit, nothing touched */
    float one[2] = {1.0f, 1.0f};
    kn_half *d = gt_up_half(one, 2);
    float *inv = inv_freq_table(2, 10000.0f);
    int rc = kn_rope_forward(d, inv, 1, 1, 7, 7, 0, NULL, 0);
    printf("head_dim 7: %d (%s)\n", rc, kn_last_error());
    tu_check("rope head_dim 7: -1 with kn_last_error naming head_dim",
             rc == -1 && strstr(kn_last_error(), "head_dim 7") ? 0.0 : 1.0, 0.0);
    rc = kn_rope_forward(d, NULL, 1, 1, 2, 2, 0, NULL, 0);
    tu_check("rope without a table: -1", rc == -1 ? 0.0 : 1.0, 0.0);
    GT_FREE(d), GT_FREE(inv);
    return tu_finish("test_rope");
}
