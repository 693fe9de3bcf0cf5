/* test_attention.c — kernels/attention*.cu (both paths: mma.sync tensor cores and FP32 FMA) against
 * host/cpu/attention.c: every supported head_dim (64, 72, 80, 96, 128), GQA ratios 1/2/3/4/8 and 64 (more heads
 * per KV head than a block has rows), T from 1 to 4096 including every tile-boundary neighbour, separate buffers and
 * the fused qkv layout, sharp (large-score) softmax. Backward twice: bit-identical. Tolerances (relative L2):
 * out 2e-3 (FP16 output; the TC path also rounds P to FP16 for P V), lse 1e-3 absolute, dq/dk/dv 5e-3 (FP16
 * inputs and outputs, P and dS rounded to FP16 in the TC path, D from FP16 out), the norm of the reference taken
 * as at least 0.01 RMS (for T = 1 the exact dq and dk are 0: dS = P (dP - D) vanishes). */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

/* rows of a [T, cols] host matrix into/out of a strided [T, ld] one at column offset off */
static void put_rows(float *dst, int ld, int off, const float *src, int T, int cols) {
    for (int t = 0; t < T; t++) memcpy(dst + (int64_t)t * ld + off, src + (int64_t)t * cols, sizeof(float) * (size_t)cols);
}
static void get_rows(float *dst, const float *src, int ld, int off, int T, int cols) {
    for (int t = 0; t < T; t++) memcpy(dst + (int64_t)t * cols, src + (int64_t)t * ld + off, sizeof(float) * (size_t)cols);
}

static void att_case(sc_rng *r, int T, int nh, int nkv, int hd, int fused, double qscale) {
    char name[200];
    int Q = nh * hd, KV = nkv * hd, ldq = fused ? Q + 2 * KV : Q, ldkv = fused ? Q + 2 * KV : KV;
    float *q = gt_randn_half(r, (int64_t)T * Q, qscale), *k = gt_randn_half(r, (int64_t)T * KV, 1.0);
    float *v = gt_randn_half(r, (int64_t)T * KV, 1.0), *dout = gt_randn_half(r, (int64_t)T * Q, 1.0);
    float *out = TU_NEW(float, (int64_t)T * Q), *lse = TU_NEW(float, (int64_t)nh * T);
    float *dq = TU_NEW(float, (int64_t)T * Q), *dk = TU_NEW(float, (int64_t)T * KV), *dv = TU_NEW(float, (int64_t)T * KV);
    attention_forward(out, lse, q, k, v, T, nh, nkv, hd);
    attention_backward(dq, dk, dv, dout, q, k, v, out, lse, T, nh, nkv, hd);

    /* device inputs: one qkv buffer (fused) or three */
    int64_t nin = fused ? (int64_t)T * ldq : (int64_t)T * (Q + 2 * KV);
    float *hin = TU_NEW(float, nin);
    if (fused) {
        put_rows(hin, ldq, 0, q, T, Q);
        put_rows(hin, ldq, Q, k, T, KV);
        put_rows(hin, ldq, Q + KV, v, T, KV);
    } else {
        memcpy(hin, q, sizeof(float) * (size_t)T * Q);
        memcpy(hin + (int64_t)T * Q, k, sizeof(float) * (size_t)T * KV);
        memcpy(hin + (int64_t)T * (Q + KV), v, sizeof(float) * (size_t)T * KV);
    }
    kn_half *din = gt_up_half(hin, nin), *dqp = din, *dkp = fused ? din + Q : din + (int64_t)T * Q;
    kn_half *dvp = fused ? din + Q + KV : din + (int64_t)T * (Q + KV), *ddout = gt_up_half(dout, (int64_t)T * Q);
    void *ws = gt_alloc(kn_attention_backward_workspace(T, nh));
    float *gout = TU_NEW(float, (int64_t)T * Q), *glse = TU_NEW(float, (int64_t)nh * T), *gg = TU_NEW(float, nin);
    float *gdq = TU_NEW(float, (int64_t)T * Q), *gdk = TU_NEW(float, (int64_t)T * KV), *gdv = TU_NEW(float, (int64_t)T * KV);
    float *gg2 = TU_NEW(float, nin);
    for (int tc = 1; tc >= 0; tc--) {
        const char *path = tc ? "tc" : "fma";
        kn_set_tensor_cores(tc);
        kn_half *dout_dev = gt_alloc(sizeof(kn_half) * (size_t)T * Q);
        float *dlse = gt_alloc(sizeof(float) * (size_t)nh * T);
        int rc = kn_attention_forward(dout_dev, dlse, dqp, dkp, dvp, T, nh, nkv, hd, ldq, ldkv, 0);
        if (rc) printf("kn_attention_forward: %s\n", kn_last_error());
        gt_down_half(gout, dout_dev, (int64_t)T * Q);
        gt_down_f32(glse, dlse, (int64_t)nh * T);
        snprintf(name, sizeof name, "attention %s fwd T=%d nh=%d nkv=%d hd=%d fused=%d q*%g: out", path, T, nh, nkv, hd,
                 fused, qscale);
        tu_check(name, rc ? INFINITY : gt_relerr(gout, out, (int64_t)T * Q), 2e-3);
        snprintf(name, sizeof name, "attention %s fwd T=%d nh=%d nkv=%d hd=%d: lse (max abs)", path, T, nh, nkv, hd);
        tu_check(name, gt_maxabs(glse, lse, (int64_t)nh * T), 1e-3);

        kn_half *dgrad = gt_alloc(sizeof(kn_half) * (size_t)nin), *gq = dgrad;
        kn_half *gk = fused ? dgrad + Q : dgrad + (int64_t)T * Q, *gv = fused ? dgrad + Q + KV : dgrad + (int64_t)T * (Q + KV);
        for (int rep = 0; rep < 2; rep++) {
            rc = kn_attention_backward(gq, gk, gv, ddout, dqp, dkp, dvp, dout_dev, dlse, T, nh, nkv, hd, ldq, ldkv, ws, 0);
            if (rc) printf("kn_attention_backward: %s\n", kn_last_error());
            gt_down_half(rep ? gg2 : gg, dgrad, nin);
        }
        if (fused) {
            get_rows(gdq, gg, ldq, 0, T, Q);
            get_rows(gdk, gg, ldq, Q, T, KV);
            get_rows(gdv, gg, ldq, Q + KV, T, KV);
        } else {
            memcpy(gdq, gg, sizeof(float) * (size_t)T * Q);
            memcpy(gdk, gg + (int64_t)T * Q, sizeof(float) * (size_t)T * KV);
            memcpy(gdv, gg + (int64_t)T * (Q + KV), sizeof(float) * (size_t)T * KV);
        }
        snprintf(name, sizeof name, "attention %s bwd T=%d nh=%d nkv=%d hd=%d fused=%d: dq", path, T, nh, nkv, hd, fused);
        tu_check(name, rc ? INFINITY : gt_relerr_floor(gdq, dq, (int64_t)T * Q, 1e-2), 5e-3);
        snprintf(name, sizeof name, "attention %s bwd T=%d nh=%d nkv=%d hd=%d fused=%d: dk", path, T, nh, nkv, hd, fused);
        tu_check(name, rc ? INFINITY : gt_relerr_floor(gdk, dk, (int64_t)T * KV, 1e-2), 5e-3);
        snprintf(name, sizeof name, "attention %s bwd T=%d nh=%d nkv=%d hd=%d fused=%d: dv", path, T, nh, nkv, hd, fused);
        tu_check(name, rc ? INFINITY : gt_relerr_floor(gdv, dv, (int64_t)T * KV, 1e-2), 5e-3);
        snprintf(name, sizeof name, "attention %s bwd T=%d: two runs bit-identical", path, T);
        tu_check(name, gt_bitdiff(gg, gg2, sizeof(float) * (size_t)nin), 0.0);
        GT_FREE(dout_dev), GT_FREE(dlse), GT_FREE(dgrad);
    }
    kn_set_tensor_cores(-1);
    GT_FREE(din), GT_FREE(ddout), GT_FREE(ws);
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv), free(hin), free(gout);
    free(glse), free(gg), free(gg2), free(gdq), free(gdk), free(gdv);
}

int main(void) {
    gt_require_device("test_attention");
    sc_rng r;
    rng_seed(&r, 19);
    int quick = gt_quick();
    tu_check("head_dim 100 is refused with a message", kn_attention_check(100, 4, 2, 400, 200) == -1 &&
             strstr(kn_last_error(), "head_dim 100") ? 0.0 : 1.0, 0.0);
    /* every head_dim */
    const int hds[] = {64, 72, 80, 96, 128};
    for (int i = 0; i < 5; i++) att_case(&r, 65, 4, 2, hds[i], 0, 1.0);
    /* GQA ratios at the 304m head_dim */
    const int kvs[] = {8, 4, 2, 1};
    for (int i = 0; i < 4; i++) att_case(&r, 100, 8, kvs[i], 72, 0, 1.0);
    att_case(&r, 41, 6, 2, 64, 0, 1.0);  /* ratio 3: rows per block not a multiple of the group */
    att_case(&r, 20, 64, 1, 64, 0, 1.0); /* ratio 64 */
    /* T around the tiles (32 and 64) */
    const int Ts[] = {1, 2, 31, 33, 63, 64, 127, 129};
    for (int i = 0; i < 8; i++) att_case(&r, Ts[i], 4, 1, 64, 0, 1.0);
    att_case(&r, 77, 16, 4, 72, 1, 1.0);  /* the model's fused qkv layout, 304m heads */
    att_case(&r, 150, 4, 2, 128, 0, 4.0); /* sharp softmax */
    if (!quick) {
        att_case(&r, 1000, 8, 2, 128, 0, 3.0);
        att_case(&r, 2048, 16, 4, 72, 1, 1.0);
        att_case(&r, 4096, 16, 4, 72, 1, 1.0); /* 304m at full context */
    }
    return tu_finish("test_attention");
}
