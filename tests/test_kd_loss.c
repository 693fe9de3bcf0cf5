/* test_kd_loss.c — kd_classifier_forward_backward (host/cpu/kd_loss.c): losses against a plain double computation
 * over the full vocabulary (teachers whose non-top-k logits are all equal, so the tail assumption is exact at any
 * temperature), forward and reverse KL, alpha 0 = plain cross-entropy (classifier.c), k = V (no tail bucket),
 * ignored targets, and dx / dW against central finite differences. T = 300 crosses a chunk boundary. */
#include "host/cpu/kd_loss.h"
#include "host/cpu/ops.h"
#include "tests/testutil.h"

enum { T = 300, C = 10, V = 48 };
static const float SCALE = 0.41f;

typedef struct {
    float *x, *W, *losses;
    const int32_t *tg;
    kd_targets kd;
} kd_ctx;

static double kd_loss_sum(void *p) {
    kd_ctx *c = p;
    return SCALE * kd_classifier_forward_backward(c->losses, NULL, NULL, NULL, c->x, c->W, c->tg, &c->kd, T, C, V, SCALE);
}

/* Teacher: k distinct ids with logits ~ N(1.5, 1.5), every other id at -1; stores top-k (descending) + lse. */
static void make_teacher(sc_rng *rng, int k, int32_t *ids, float *tl, float *lse, double *full) {
    for (int t = 0; t < T; t++) {
        double *f = full + (int64_t)t * V;
        for (int v = 0; v < V; v++) f[v] = -1.0;
        for (int i = 0; i < k; i++) {
            int id;
            do id = (int)rng_below(rng, V);
            while (f[id] != -1.0);
            f[id] = 1.5 + 1.5 * rng_normal(rng);
            ids[t * k + i] = id;
            tl[t * k + i] = (float)f[id];
        }
        double mx = -INFINITY, s = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, f[v]);
        for (int v = 0; v < V; v++) s += exp(f[v] - mx);
        lse[t] = (float)(mx + log(s));
        for (int i = 0; i < k; i++) f[ids[t * k + i]] = tl[t * k + i]; /* the float values the op sees */
    }
}

/* The reference loss of one configuration, in double over the full vocabulary. */
static double ref_losses(const kd_ctx *c, const double *full, double *out) {
    const kd_targets *kd = &c->kd;
    double total = 0, Tm = kd->temperature;
    for (int t = 0; t < T; t++) {
        if (c->tg[t] < 0) {
            out[t] = 0;
            continue;
        }
        double z[V], mx = -INFINITY, s1 = 0, sT = 0, pt[V], mt = -INFINITY, st = 0;
        for (int v = 0; v < V; v++) {
            z[v] = 0;
            for (int i = 0; i < C; i++) z[v] += (double)c->x[t * C + i] * c->W[v * C + i];
            mx = fmax(mx, z[v]);
            mt = fmax(mt, full[t * V + v] / Tm);
        }
        for (int v = 0; v < V; v++) s1 += exp(z[v] - mx), sT += exp((z[v] - mx) / Tm), st += exp(full[t * V + v] / Tm - mt);
        double ce = mx + log(s1) - z[c->tg[t]];
        int intop[V] = {0};
        for (int i = 0; i < kd->k; i++) intop[kd->ids[t * kd->k + i]] = 1;
        double qtail = 0, ptail = 0, kl = 0;
        for (int v = 0; v < V; v++) {
            double q = exp((z[v] - mx) / Tm) / sT;
            pt[v] = exp(full[t * V + v] / Tm - mt) / st;
            if (intop[v]) kl += kd->reverse ? q * log(q / pt[v]) : pt[v] * log(pt[v] / q);
            else qtail += q, ptail += pt[v];
        }
        if (kd->k < V) kl += kd->reverse ? qtail * log(qtail / ptail) : ptail * log(ptail / qtail);
        out[t] = kd->alpha * Tm * Tm * kl + (1 - kd->alpha) * ce;
        total += out[t];
    }
    return total;
}

static void run_case(const char *name, int k, float alpha, float Tm, int reverse, int fd) {
    sc_rng rng;
    rng_seed(&rng, 777 + (uint64_t)k * 13 + (uint64_t)reverse);
    int32_t tg[T], *ids = TU_NEW(int32_t, T * k);
    for (int t = 0; t < T; t++) tg[t] = (int32_t)rng_below(&rng, V);
    tg[3] = -1, tg[290] = -100;
    float *tl = TU_NEW(float, T * k), *lse = TU_NEW(float, T);
    double *full = TU_NEW(double, T * V), *lref = TU_NEW(double, T);
    make_teacher(&rng, k, ids, tl, lse, full);
    kd_ctx c = {tu_randn(&rng, T * C, 1.0), tu_randn(&rng, V * C, 0.8), TU_NEW(float, T), tg,
                {k, ids, tl, lse, alpha, Tm, reverse}};
    float *dx = tu_randn(&rng, T * C, 1.0), *dW0 = tu_randn(&rng, V * C, 1.0), *dW = tu_copy(dW0, V * C);
    float *ce = TU_NEW(float, T);
    double total = kd_classifier_forward_backward(c.losses, ce, dx, dW, c.x, c.W, tg, &c.kd, T, C, V, SCALE);
    double rtotal = ref_losses(&c, full, lref);
    char what[160];
    snprintf(what, sizeof what, "%s: losses vs full-vocabulary double reference", name);
    tu_check(what, tu_relerr(c.losses, lref, T), 2e-5);
    snprintf(what, sizeof what, "%s: returned sum", name);
    tu_check(what, fabs(total - rtotal) / rtotal, 2e-5);
    if (alpha == 0.0f) { /* pure CE: must equal the classifier */
        float *l2 = TU_NEW(float, T), *dx2 = TU_NEW(float, T * C), *dW2 = tu_copy(dW0, V * C);
        classifier_forward_backward(l2, NULL, dx2, dW2, c.x, c.W, tg, T, C, V, SCALE);
        tu_check("alpha 0: losses equal classifier's CE", tu_maxabs_diff(l2, c.losses, T), 1e-5);
        tu_check("alpha 0: dx equals classifier's", tu_maxabs_diff(dx2, dx, T * C), 1e-5);
        free(l2), free(dx2), free(dW2);
    }
    if (fd) {
        enum { NR = 12 };
        int rows[NR] = {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255};
        double *gx = TU_NEW(double, NR * C), *gw = TU_NEW(double, V * C);
        float *dxs = TU_NEW(float, NR * C);
        tu_fd_rows(gx, dxs, c.x, dx, rows, NR, C, 1e-3f, kd_loss_sum, &c);
        tu_fd_grad(gw, c.W, V * C, 1e-3f, kd_loss_sum, &c);
        float *ddW = tu_sub(dW, dW0, V * C);
        snprintf(what, sizeof what, "%s: dx vs central finite differences", name);
        tu_check(what, tu_relerr(dxs, gx, NR * C), 2e-3);
        snprintf(what, sizeof what, "%s: dW (accumulated) vs central finite differences", name);
        tu_check(what, tu_relerr(ddW, gw, V * C), 2e-3);
        free(gx), free(gw), free(dxs), free(ddW);
    }
    double ign = fabs(c.losses[3]) + fabs(c.losses[290]) + sqrt(tu_dot(dx + 3 * C, dx + 3 * C, C));
    snprintf(what, sizeof what, "%s: ignored targets carry no loss or gradient", name);
    tu_check(what, ign, 0.0);
    free(ids), free(tl), free(lse), free(full), free(lref), free(c.x), free(c.W), free(c.losses), free(dx), free(dW0);
    free(dW), free(ce);
}

int main(void) {
    run_case("forward KL, k 8, T 2, alpha 0.6", 8, 0.6f, 2.0f, 0, 1);
    run_case("reverse KL, k 8, T 1.5, alpha 0.7", 8, 0.7f, 1.5f, 1, 1);
    run_case("forward KL, k 5, T 1, alpha 1", 5, 1.0f, 1.0f, 0, 1);
    run_case("forward KL, k = V (no tail), T 3, alpha 0.5", V, 0.5f, 3.0f, 0, 1);
    run_case("reverse KL, k = V (no tail), T 0.7, alpha 0.5", V, 0.5f, 0.7f, 1, 0);
    run_case("alpha 0 (pure CE), k 4", 4, 0.0f, 2.0f, 0, 0);
    return tu_finish("test_kd_loss");
}
