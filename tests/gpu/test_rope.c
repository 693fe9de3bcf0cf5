/* test_rope.c — kernels/rope.cu against host/cpu/rope.c: forward and backward (the inverse rotation), contiguous
 * and strided rows (the q|k part of a fused qkv buffer: columns past n_heads * head_dim must stay untouched),
 * pos0 > 0, positions up to 4096. Tolerance 2e-3 relative L2: one FP16 rounding of the output (~3e-4) plus
 * sincosf against the CPU's double cos/sin of the same float angle. An unsupported head_dim returns -1. */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

static void rope_case(sc_rng *r, int T, int nh, int hd, int ld, int pos0) {
    char name[128];
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
        if (dir == 0) kn_rope_forward(d, T, nh, hd, ld, pos0, 10000.0f, 0);
        else kn_rope_backward(d, T, nh, hd, ld, pos0, 10000.0f, 0);
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
    kn_rope_forward(d, T, nh, hd, ld, pos0, 10000.0f, 0);
    kn_rope_backward(d, T, nh, hd, ld, pos0, 10000.0f, 0);
    float *g = TU_NEW(float, n);
    gt_down_half(g, d, n);
    snprintf(name, sizeof name, "rope bwd(fwd(x)) == x T=%d hd=%d", T, hd);
    tu_check(name, gt_relerr(g, x, n), 2e-3);
    GT_FREE(d);
    free(g), free(x), free(xc), free(ref_f), free(ref_b);
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
    /* a head_dim the kernel cannot hold: -1 and a message, no exit, nothing touched */
    float one[1] = {1.0f};
    kn_half *d = gt_up_half(one, 1);
    int rc = kn_rope_forward(d, 1, 1, 2050, 2050, 0, 10000.0f, 0);
    printf("head_dim 2050: %d (%s)\n", rc, kn_last_error());
    tu_check("rope head_dim 2050: -1 with kn_last_error naming head_dim",
             rc == -1 && strstr(kn_last_error(), "head_dim 2050") ? 0.0 : 1.0, 0.0);
    GT_FREE(d);
    return tu_finish("test_rope");
}
