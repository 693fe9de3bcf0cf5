/* test_cpu_swiglu.c — swiglu_forward against silu(g) * u in double (including |g| large enough to overflow exp);
 * swiglu_backward (outputs overwritten) against central finite differences of L = sum(out * R). */
#include "host/cpu/ops.h"
#include "tests/testutil.h"

typedef struct {
    float *gate, *up, *R, *out;
    int64_t n;
} sw_ctx;

static double sw_loss(void *p) {
    sw_ctx *c = p;
    swiglu_forward(c->out, c->gate, c->up, c->n);
    return tu_dot(c->out, c->R, c->n);
}

int main(void) {
    sc_rng rng;
    rng_seed(&rng, 7);
    enum { N = 1001 };
    float *g = tu_randn(&rng, N, 3.0), *u = tu_randn(&rng, N, 1.0), *out = tu_randn(&rng, N, 1.0);
    g[0] = 100.0f, g[1] = -100.0f, g[2] = -1000.0f, g[3] = 0.0f, g[4] = 30.0f, g[5] = -30.0f;
    double *ref = TU_NEW(double, N);
    for (int i = 0; i < N; i++) ref[i] = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    swiglu_forward(out, g, u, N);
    tu_check("forward vs silu(g)*u in double, incl. |g| = 1000", tu_relerr(out, ref, N), 1e-6);
    int finite = 1;
    for (int i = 0; i < N; i++) finite &= isfinite(out[i]);
    tu_check("forward is finite everywhere", finite ? 0.0 : 1.0, 0.0);

    enum { M = 64 };
    sw_ctx c = {tu_randn(&rng, M, 2.0), tu_randn(&rng, M, 1.0), tu_randn(&rng, M, 1.0), TU_NEW(float, M), M};
    c.gate[0] = 40.0f, c.gate[1] = -40.0f;
    float *dg = tu_randn(&rng, M, 1.0), *du = tu_randn(&rng, M, 1.0); /* garbage: overwritten */
    swiglu_backward(dg, du, c.R, c.gate, c.up, M);
    double *gg = TU_NEW(double, M), *gu = TU_NEW(double, M);
    tu_fd_grad(gg, c.gate, M, 1e-3f, sw_loss, &c);
    tu_fd_grad(gu, c.up, M, 1e-3f, sw_loss, &c);
    tu_check("backward dgate vs finite differences", tu_relerr(dg, gg, M), 1e-3);
    tu_check("backward dup vs finite differences", tu_relerr(du, gu, M), 1e-3);
    free(g), free(u), free(out), free(ref), free(c.gate), free(c.up), free(c.R), free(c.out), free(dg), free(du);
    free(gg), free(gu);
    return tu_finish("test_cpu_swiglu");
}
