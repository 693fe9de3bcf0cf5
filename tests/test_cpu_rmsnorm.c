/* test_cpu_rmsnorm.c — rmsnorm_forward (fused residual add, delta NULL with in-place resid) against a double
 * loop; rmsnorm_backward against central finite differences of L = sum(norm_out * R1) + sum(resid_out * R2),
 * w.r.t. resid_in, delta and weight, with dresid given, NULL, and aliased to the output. C = 70 spans two of the
 * backward's column blocks. */
#include "host/cpu/ops.h"
#include "tests/testutil.h"

enum { T = 7, C = 70 };
static const float EPS = 1e-5f;

typedef struct {
    float *resid_in, *delta, *weight, *R1, *R2; /* R2 NULL: the residual output is not used */
    float *resid_out, *norm_out, *rstd;
} rn_ctx;

static double rn_loss(void *p) {
    rn_ctx *c = p;
    rmsnorm_forward(c->resid_out, c->norm_out, c->rstd, c->resid_in, c->delta, c->weight, T, C, EPS);
    return tu_dot(c->norm_out, c->R1, T * C) + (c->R2 ? tu_dot(c->resid_out, c->R2, T * C) : 0.0);
}

static void check_forward(sc_rng *rng) {
    float *a = tu_randn(rng, T * C, 2.0), *b = tu_randn(rng, T * C, 1.0), *w = tu_randn(rng, C, 1.0);
    float *r = TU_NEW(float, T * C), *o = TU_NEW(float, T * C), *rs = TU_NEW(float, T);
    double *ref = TU_NEW(double, T * C), *rref = TU_NEW(double, T);
    float *sum = TU_NEW(float, T * C);
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int k = 0; k < C; k++) {
            sum[t * C + k] = a[t * C + k] + b[t * C + k];
            ss += (double)sum[t * C + k] * sum[t * C + k];
        }
        rref[t] = 1.0 / sqrt(ss / C + EPS);
        for (int k = 0; k < C; k++) ref[t * C + k] = sum[t * C + k] * rref[t] * w[k];
    }
    rmsnorm_forward(r, o, rs, a, b, w, T, C, EPS);
    tu_check("forward resid_out == resid_in + delta", tu_maxabs_diff(r, sum, T * C), 0.0);
    tu_check("forward norm_out vs naive", tu_relerr(o, ref, T * C), 1e-6);
    tu_check("forward rstd vs naive", tu_relerr(rs, rref, T), 1e-6);
    /* delta NULL, resid_out aliasing resid_in */
    float *inplace = tu_copy(sum, T * C);
    rmsnorm_forward(inplace, o, rs, inplace, NULL, w, T, C, EPS);
    tu_check("forward delta NULL in place keeps resid", tu_maxabs_diff(inplace, sum, T * C), 0.0);
    tu_check("forward delta NULL norm_out vs naive", tu_relerr(o, ref, T * C), 1e-6);
    /* a row of zeros: rstd = 1/sqrt(eps), output zero, no NaN */
    memset(inplace, 0, sizeof(float) * C);
    rmsnorm_forward(inplace, o, rs, inplace, NULL, w, 1, C, EPS);
    double z = 0;
    for (int k = 0; k < C; k++) z = fmax(z, isfinite(o[k]) ? fabs(o[k]) : INFINITY);
    tu_check("forward all-zero row gives zeros", z, 0.0);
    free(a), free(b), free(w), free(r), free(o), free(rs), free(ref), free(rref), free(sum), free(inplace);
}

/* mode 0: dresid given, 1: dresid NULL, 2: dresid aliases dresid_total */
static void check_backward(sc_rng *rng, int mode) {
    rn_ctx c = {tu_randn(rng, T * C, 1.5), tu_randn(rng, T * C, 1.0), tu_randn(rng, C, 1.0), tu_randn(rng, T * C, 1.0),
                mode == 1 ? NULL : tu_randn(rng, T * C, 1.0), TU_NEW(float, T * C), TU_NEW(float, T * C),
                TU_NEW(float, T)};
    rn_loss(&c);
    float *dw0 = tu_randn(rng, C, 1.0), *dw = tu_copy(dw0, C);
    float *dtot = tu_randn(rng, T * C, 1.0); /* garbage: overwritten */
    const float *dresid = c.R2;
    if (mode == 2) {
        memcpy(dtot, c.R2, sizeof(float) * T * C);
        dresid = dtot;
    }
    rmsnorm_backward(dtot, dw, c.R1, dresid, c.resid_out, c.rstd, c.weight, T, C);
    double *gin = TU_NEW(double, T * C), *gd = TU_NEW(double, T * C), *gw = TU_NEW(double, C);
    tu_fd_grad(gin, c.resid_in, T * C, 1e-3f, rn_loss, &c);
    tu_fd_grad(gd, c.delta, T * C, 1e-3f, rn_loss, &c);
    tu_fd_grad(gw, c.weight, C, 1e-3f, rn_loss, &c);
    const char *name[] = {"dresid given", "dresid NULL", "dresid aliased"};
    char what[96];
    snprintf(what, sizeof what, "backward (%s) d resid_in vs finite differences", name[mode]);
    tu_check(what, tu_relerr(dtot, gin, T * C), 1e-3);
    snprintf(what, sizeof what, "backward (%s) d delta vs finite differences", name[mode]);
    tu_check(what, tu_relerr(dtot, gd, T * C), 1e-3);
    float *ddw = tu_sub(dw, dw0, C);
    snprintf(what, sizeof what, "backward (%s) dweight (accumulated) vs finite diff.", name[mode]);
    tu_check(what, tu_relerr(ddw, gw, C), 1e-3);
    free(c.resid_in), free(c.delta), free(c.weight), free(c.R1), free(c.R2), free(c.resid_out), free(c.norm_out);
    free(c.rstd), free(dw0), free(dw), free(dtot), free(gin), free(gd), free(gw), free(ddw);
}

int main(void) {
    sc_rng rng;
    rng_seed(&rng, 5);
    check_forward(&rng);
    for (int mode = 0; mode < 3; mode++) check_backward(&rng, mode);
    return tu_finish("test_cpu_rmsnorm");
}
