/* test_kd_loss.c — kernels/kd_loss.cu against its CPU twin host/cpu/kd_loss.c (itself checked against a double
 * reference and finite differences in tests/test_kd_loss.c): per-position losses and CE parts, dx and dW, for
 * k in {1, 8, 32} and k = V (no tail bucket), forward and reverse KL, alpha 0 / 0.5 / 1, temperatures 1 and 2,
 * odd T over several chunks (the last partial), V not a multiple of the row kernel's 4096-element segment, ignored
 * targets (-1 and >= V, one as the first row of a chunk) and targets inside the teacher's top-k; the forward-only
 * call, and two runs bit-identical. Teacher logits are FP16 on the device and the same FP16 values as floats on
 * the CPU. Tolerances (relative L2): losses and CE 1e-4 (FP16 inputs on both sides, FP32 GEMM; the row math in
 * FP32/double on both); dx and dW 3e-3, as test_classifier (the device's dlogits are FP16 before the GEMMs). */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/kd_loss.h"

typedef struct {
    int T, C, V, k, chunk, reverse;
    float alpha, temp, loss_scale, tstd; /* tstd: spread of the teacher's logits (8: nearly all mass in the top-k) */
} kd_shape;

/* Teacher rows: full logits ~ N(0, tstd) (plus a pull towards the target, so the two distributions overlap), the
 * top-k in descending order (ties by lower id), their FP16-rounded values, and the FP32 logsumexp of the row. */
static void make_teacher(sc_rng *r, const kd_shape *s, const int32_t *tg, int32_t *ids, float *tl, float *lse) {
    double *full = TU_NEW(double, s->V);
    char *taken = TU_NEW(char, s->V);
    for (int t = 0; t < s->T; t++) {
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < s->V; v++) {
            full[v] = s->tstd * rng_normal(r) + (v == tg[t] ? 3.0 : 0.0);
            mx = fmax(mx, full[v]);
            taken[v] = 0;
        }
        for (int v = 0; v < s->V; v++) sum += exp(full[v] - mx);
        lse[t] = (float)(mx + log(sum));
        for (int i = 0; i < s->k; i++) {
            int best = -1;
            for (int v = 0; v < s->V; v++)
                if (!taken[v] && (best < 0 || full[v] > full[best])) best = v;
            taken[best] = 1;
            ids[(int64_t)t * s->k + i] = best;
            tl[(int64_t)t * s->k + i] = (float)full[best];
        }
    }
    gt_round_half(tl, (int64_t)s->T * s->k);
    free(full), free(taken);
}

static void kd_case(kn_blas *b, sc_rng *r, kd_shape s) {
    char name[200];
    const int T = s.T, C = s.C, V = s.V, k = s.k;
    float *x = gt_randn_half(r, (int64_t)T * C, 1.0), *W = gt_randn_half(r, (int64_t)V * C, 0.1);
    int32_t *tg = TU_NEW(int32_t, T), *ids = TU_NEW(int32_t, (int64_t)T * k);
    float *tl = TU_NEW(float, (int64_t)T * k), *lse = TU_NEW(float, T);
    for (int t = 0; t < T; t++) tg[t] = (int32_t)rng_below(r, (uint64_t)V);
    make_teacher(r, &s, tg, ids, tl, lse);
    /* a third of the targets at one of the teacher's ids (not only its top-1); some ignored, one of them the
     * first row of the second chunk */
    for (int t = 0; t < T; t += 3) tg[t] = ids[(int64_t)t * k + (t / 3) % k];
    if (T > 2) tg[1] = -1, tg[T - 1] = V + 5;
    if (T > s.chunk + 1) tg[s.chunk] = -1;
    kd_targets kd = {k, ids, tl, lse, s.alpha, s.temp, s.reverse};
    float *losses = TU_NEW(float, T), *ce = TU_NEW(float, T), *dx = TU_NEW(float, (int64_t)T * C);
    float *dW0 = tu_randn(r, (int64_t)V * C, 0.01), *dW = tu_copy(dW0, (int64_t)V * C);
    kd_classifier_forward_backward(losses, ce, dx, dW, x, W, tg, &kd, T, C, V, s.loss_scale);

    kn_half *d_x = gt_up_half(x, (int64_t)T * C), *d_W = gt_up_half(W, (int64_t)V * C);
    kn_half *d_tl = gt_up_half(tl, (int64_t)T * k), *d_dx = gt_alloc(sizeof(kn_half) * (size_t)T * C);
    int32_t *d_tg = gt_up_i32(tg, T), *d_ids = gt_up_i32(ids, (int64_t)T * k);
    float *d_lse = gt_up_f32(lse, T), *d_dW = gt_up_f32(dW0, (int64_t)V * C);
    float *d_losses = gt_alloc(sizeof(float) * T), *d_ce = gt_alloc(sizeof(float) * T);
    void *ws = gt_alloc(kn_classifier_workspace(s.chunk, V));
    int rc = kn_kd_classifier_forward_backward(b, d_losses, d_ce, d_dx, d_dW, 1.0f, d_x, d_W, d_tg, d_ids, d_tl,
                                               d_lse, k, s.alpha, s.temp, s.reverse, T, C, V, s.loss_scale, s.chunk,
                                               ws, 0);
    if (rc) printf("kn_kd_classifier_forward_backward: %s\n", kn_last_error());
    float *gl = TU_NEW(float, T), *gce = TU_NEW(float, T), *gdx = TU_NEW(float, (int64_t)T * C);
    float *gdW = TU_NEW(float, (int64_t)V * C);
    gt_down_f32(gl, d_losses, T);
    gt_down_f32(gce, d_ce, T);
    gt_down_half(gdx, d_dx, (int64_t)T * C);
    gt_down_f32(gdW, d_dW, (int64_t)V * C);
    float *aW = tu_sub(gdW, dW0, (int64_t)V * C), *rW = tu_sub(dW, dW0, (int64_t)V * C);
    snprintf(name, sizeof name, "kd T=%d C=%d V=%d k=%d chunk=%d %s alpha=%g temp=%g scale=%g tstd=%g: losses", T, C,
             V, k, s.chunk, s.reverse ? "reverse" : "forward", s.alpha, s.temp, s.loss_scale, s.tstd);
    tu_check(name, rc ? INFINITY : gt_relerr(gl, losses, T), 1e-4);
    snprintf(name, sizeof name, "kd T=%d V=%d k=%d: CE parts", T, V, k);
    tu_check(name, gt_relerr(gce, ce, T), 1e-4);
    snprintf(name, sizeof name, "kd T=%d V=%d k=%d: dx", T, V, k);
    tu_check(name, gt_relerr(gdx, dx, (int64_t)T * C), 3e-3);
    snprintf(name, sizeof name, "kd T=%d V=%d k=%d: dW accumulated", T, V, k);
    tu_check(name, gt_relerr(aW, rW, (int64_t)V * C), 3e-3);

    /* forward only (no ce array): the same losses bit for bit, dx untouched */
    float *d_l2 = gt_alloc(sizeof(float) * T), *gl2 = TU_NEW(float, T);
    rc = kn_kd_classifier_forward_backward(b, d_l2, NULL, NULL, NULL, 1.0f, d_x, d_W, d_tg, d_ids, d_tl, d_lse, k,
                                           s.alpha, s.temp, s.reverse, T, C, V, s.loss_scale, s.chunk, ws, 0);
    gt_down_f32(gl2, d_l2, T);
    snprintf(name, sizeof name, "kd T=%d V=%d k=%d forward only: losses as with gradients", T, V, k);
    tu_check(name, rc ? 1.0 : gt_bitdiff(gl2, gl, sizeof(float) * (size_t)T), 0.0);
    GT_FREE(d_x), GT_FREE(d_W), GT_FREE(d_tl), GT_FREE(d_dx), GT_FREE(d_tg), GT_FREE(d_ids), GT_FREE(d_lse);
    GT_FREE(d_dW), GT_FREE(d_losses), GT_FREE(d_ce), GT_FREE(ws), GT_FREE(d_l2);
    free(x), free(W), free(tg), free(ids), free(tl), free(lse), free(losses), free(ce), free(dx), free(dW0);
    free(dW), free(gl), free(gce), free(gdx), free(gdW), free(aW), free(rW), free(gl2);
}

/* Two runs of the same call give the same bits (no atomics); bad k and temperature are refused. */
static void kd_determinism(kn_blas *b, sc_rng *r) {
    const int T = 19, C = 32, V = 300, k = 8;
    float *x = gt_randn_half(r, (int64_t)T * C, 1.0), *W = gt_randn_half(r, (int64_t)V * C, 0.1);
    float *tl = gt_randn_half(r, (int64_t)T * k, 2.0), *lse = TU_NEW(float, T);
    int32_t *tg = TU_NEW(int32_t, T), *ids = TU_NEW(int32_t, (int64_t)T * k);
    for (int t = 0; t < T; t++) {
        tg[t] = (int32_t)rng_below(r, (uint64_t)V);
        lse[t] = 8.0f;
        for (int i = 0; i < k; i++) ids[t * k + i] = (t * 7 + i * 31) % V;
    }
    kn_half *d_x = gt_up_half(x, (int64_t)T * C), *d_W = gt_up_half(W, (int64_t)V * C);
    kn_half *d_tl = gt_up_half(tl, (int64_t)T * k), *d_dx = gt_alloc(sizeof(kn_half) * (size_t)T * C);
    int32_t *d_tg = gt_up_i32(tg, T), *d_ids = gt_up_i32(ids, (int64_t)T * k);
    float *d_lse = gt_up_f32(lse, T), *d_l = gt_alloc(sizeof(float) * T);
    float *d_dW = gt_alloc(sizeof(float) * (size_t)V * C);
    void *ws = gt_alloc(kn_classifier_workspace(8, V));
    float *out[2];
    for (int run = 0; run < 2; run++) {
        GT_CHECK(cudaMemset(d_dW, 0, sizeof(float) * (size_t)V * C));
        for (int rev = 0; rev < 2; rev++) /* two accumulations, so the order of the adds matters too */
            kn_kd_classifier_forward_backward(b, d_l, NULL, d_dx, d_dW, 0.5f, d_x, d_W, d_tg, d_ids, d_tl, d_lse, k,
                                              0.5f, 2.0f, rev, T, C, V, 32.0f, 8, ws, 0);
        out[run] = TU_NEW(float, (int64_t)V * C);
        gt_down_f32(out[run], d_dW, (int64_t)V * C);
    }
    tu_check("kd two runs: dW bit-identical", gt_bitdiff(out[0], out[1], sizeof(float) * (size_t)V * C), 0.0);
    int bad = !kn_kd_classifier_forward_backward(b, d_l, NULL, NULL, NULL, 1.0f, d_x, d_W, d_tg, d_ids, d_tl, d_lse,
                                                 V + 1, 0.5f, 1.0f, 0, T, C, V, 1.0f, 8, ws, 0);
    bad |= !kn_kd_classifier_forward_backward(b, d_l, NULL, NULL, NULL, 1.0f, d_x, d_W, d_tg, d_ids, d_tl, d_lse, 0,
                                              0.5f, 1.0f, 0, T, C, V, 1.0f, 8, ws, 0);
    bad |= !kn_kd_classifier_forward_backward(b, d_l, NULL, NULL, NULL, 1.0f, d_x, d_W, d_tg, d_ids, d_tl, d_lse, k,
                                              0.5f, 0.0f, 0, T, C, V, 1.0f, 8, ws, 0);
    tu_check("kd: k > V, k = 0 and temperature 0 refused", bad, 0.0);
    GT_FREE(d_x), GT_FREE(d_W), GT_FREE(d_tl), GT_FREE(d_dx), GT_FREE(d_tg), GT_FREE(d_ids), GT_FREE(d_lse);
    GT_FREE(d_l), GT_FREE(d_dW), GT_FREE(ws);
    free(x), free(W), free(tl), free(lse), free(tg), free(ids), free(out[0]), free(out[1]);
}

int main(void) {
    gt_require_device("test_kd_loss");
    sc_rng r;
    rng_seed(&r, 77);
    kn_blas *b = kn_blas_create(0, NULL, 0, NULL, 0);
    /*                         T     C      V   k chunk rev alpha  temp  scale  tstd */
    kd_case(b, &r, (kd_shape){1, 64, 100, 1, 1, 0, 0.5f, 1.0f, 1.0f, 2.0f});
    kd_case(b, &r, (kd_shape){37, 64, 1000, 8, 16, 0, 0.5f, 2.0f, 32.0f, 2.0f}); /* 3 chunks, the last of 5 rows */
    kd_case(b, &r, (kd_shape){37, 64, 1000, 32, 16, 1, 0.5f, 1.0f, 32.0f, 2.0f});
    kd_case(b, &r, (kd_shape){21, 32, 1000, 8, 8, 1, 1.0f, 2.0f, 2.0f, 2.0f});  /* KD only */
    kd_case(b, &r, (kd_shape){21, 32, 1000, 32, 8, 0, 0.0f, 1.0f, 2.0f, 2.0f}); /* CE only */
    kd_case(b, &r, (kd_shape){15, 32, 500, 1, 4, 1, 1.0f, 1.0f, 32.0f, 2.0f});
    kd_case(b, &r, (kd_shape){15, 32, 32, 32, 4, 0, 0.5f, 2.0f, 32.0f, 2.0f}); /* k = V: no tail bucket */
    kd_case(b, &r, (kd_shape){15, 32, 32, 32, 4, 1, 0.5f, 1.0f, 32.0f, 2.0f});
    kd_case(b, &r, (kd_shape){25, 32, 700, 8, 8, 0, 0.5f, 1.0f, 32.0f, 8.0f}); /* tail mass ~0: the 1e-8 floor */
    kd_case(b, &r, (kd_shape){25, 32, 700, 32, 8, 1, 0.5f, 2.0f, 32.0f, 8.0f});
    kd_case(b, &r, (kd_shape){9, 64, 4097, 32, 4, 0, 0.5f, 2.0f, 32.0f, 2.0f}); /* V odd, two row segments */
    kd_case(b, &r, (kd_shape){67, 128, 9000, 32, 32, 1, 0.5f, 2.0f, 32.0f, 2.0f}); /* three segments */
    kd_determinism(b, &r);
    if (!gt_quick()) {
        kd_case(b, &r, (kd_shape){257, 1152, 32768, 32, 128, 0, 0.5f, 2.0f, 32.0f, 2.0f});
        kd_case(b, &r, (kd_shape){257, 1152, 32768, 32, 128, 1, 0.5f, 1.0f, 32.0f, 2.0f});
        kd_case(b, &r, (kd_shape){129, 1152, 32768, 1, 64, 0, 0.9f, 2.0f, 32.0f, 8.0f});
    }
    kn_blas_destroy(b);
    return tu_finish("test_kd_loss");
}
