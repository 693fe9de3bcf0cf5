/* test_cpu_classifier.c — classifier_forward_backward at T = 300 (chunks of 256 and 44 tokens at V = 40; the second
 * chunk has only ignored targets): losses, their sum and logits_out against a double loop; dx (overwritten) and dW
 * (accumulated) against central finite differences of L = loss_scale * sum(losses) (dx on rows around the chunk
 * boundary, to keep the test fast). */
#include "host/cpu/ops.h"
#include "tests/testutil.h"

enum { T = 300, C = 12, V = 40 };
static const float SCALE = 0.37f;

typedef struct {
    float *x, *W, *losses;
    const int32_t *tg;
} cl_ctx;

static double cl_loss(void *p) {
    cl_ctx *c = p;
    return SCALE * classifier_forward_backward(c->losses, NULL, NULL, NULL, c->x, c->W, c->tg, T, C, V, SCALE);
}

int main(void) {
    sc_rng rng;
    rng_seed(&rng, 31337);
    int32_t tg[T];
    for (int t = 0; t < T; t++) tg[t] = (int32_t)rng_below(&rng, V);
    tg[0] = -100, tg[5] = -1, tg[200] = -100;
    for (int t = 256; t < T; t++) tg[t] = -1; /* a whole chunk ignored */
    tg[255] = V - 1;
    cl_ctx c = {tu_randn(&rng, T * C, 1.0), tu_randn(&rng, V * C, 0.7), TU_NEW(float, T), tg};

    /* naive forward in double */
    double *lref = TU_NEW(double, T * V), *loss_ref = TU_NEW(double, T), total_ref = 0;
    for (int t = 0; t < T; t++) {
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) {
            double s = 0;
            for (int k = 0; k < C; k++) s += (double)c.x[t * C + k] * c.W[v * C + k];
            lref[t * V + v] = s;
            mx = fmax(mx, s);
        }
        for (int v = 0; v < V; v++) sum += exp(lref[t * V + v] - mx);
        loss_ref[t] = tg[t] >= 0 ? mx + log(sum) - lref[t * V + tg[t]] : 0.0;
        total_ref += loss_ref[t];
    }

    float *logits = tu_randn(&rng, T * V, 1.0), *dx = tu_randn(&rng, T * C, 1.0); /* garbage: overwritten */
    float *dW0 = tu_randn(&rng, V * C, 1.0), *dW = tu_copy(dW0, V * C);
    double total = classifier_forward_backward(c.losses, logits, dx, dW, c.x, c.W, tg, T, C, V, SCALE);
    tu_check("losses vs naive", tu_relerr(c.losses, loss_ref, T), 1e-6);
    tu_check("returned sum vs naive (relative)", fabs(total - total_ref) / total_ref, 1e-6);
    tu_check("logits_out vs naive", tu_relerr(logits, lref, T * V), 1e-6);
    double ign = 0;
    for (int t = 0; t < T; t++)
        if (tg[t] < 0) ign = fmax(ign, fmax(fabs(c.losses[t]), sqrt(tu_dot(dx + t * C, dx + t * C, C))));
    tu_check("ignored positions: loss 0 and dx 0", ign, 0.0);

    /* the same losses without logits_out and without backward */
    float *l2 = TU_NEW(float, T);
    double total2 = classifier_forward_backward(l2, NULL, NULL, NULL, c.x, c.W, tg, T, C, V, SCALE);
    tu_check("forward-only losses equal forward+backward losses", tu_maxabs_diff(l2, c.losses, T), 0.0);
    tu_check("forward-only sum equals forward+backward sum", fabs(total2 - total), 0.0);
    /* backward without logits_out (dlogits computed in place) gives the same gradients */
    float *dx3 = TU_NEW(float, T * C), *dW3 = tu_copy(dW0, V * C);
    classifier_forward_backward(l2, NULL, dx3, dW3, c.x, c.W, tg, T, C, V, SCALE);
    tu_check("backward without logits_out: same dx", tu_maxabs_diff(dx3, dx, T * C), 0.0);
    tu_check("backward without logits_out: same dW", tu_maxabs_diff(dW3, dW, V * C), 0.0);

    /* rows 0-9 (first chunk, ignored ones included), 250-263 (across the boundary, incl. the ignored chunk) */
    enum { NR = 24 };
    int rows[NR];
    for (int i = 0; i < NR; i++) rows[i] = i < 10 ? i : 240 + i;
    double *gx = TU_NEW(double, NR * C), *gw = TU_NEW(double, V * C);
    float *dxs = TU_NEW(float, NR * C);
    tu_fd_rows(gx, dxs, c.x, dx, rows, NR, C, 1e-3f, cl_loss, &c);
    tu_fd_grad(gw, c.W, V * C, 1e-3f, cl_loss, &c);
    float *ddW = tu_sub(dW, dW0, V * C);
    tu_check("dx (rows 0-9, 250-263) vs finite differences", tu_relerr(dxs, gx, NR * C), 1e-3);
    tu_check("dW (accumulated) vs finite differences", tu_relerr(ddW, gw, V * C), 1e-3);
    free(c.x), free(c.W), free(c.losses), free(lref), free(loss_ref), free(logits), free(dx), free(dW0), free(dW);
    free(l2), free(dx3), free(dW3), free(gx), free(gw), free(ddW), free(dxs);
    return tu_finish("test_cpu_classifier");
}
