/* test_cpu_matmul.c — matmul_forward against a double triple loop; matmul_backward (dx +=, dW +=, dx NULL)
 * against central finite differences of L = sum(y * R); bias_forward against a loop and bias_backward (db +=, the
 * twin of kernels/gemm.cu kn_bias_backward) against finite differences of L = sum((y + b) * R). */
#include "host/cpu/ops.h"
#include "tests/testutil.h"

typedef struct {
    float *x, *W, *R, *y;
    int T, in, out;
} mm_ctx;

static double mm_loss(void *p) {
    mm_ctx *c = p;
    matmul_forward(c->y, c->x, c->W, c->T, c->in, c->out);
    return tu_dot(c->y, c->R, (int64_t)c->T * c->out);
}

static void check_forward(sc_rng *rng, int T, int in, int out) {
    float *x = tu_randn(rng, (int64_t)T * in, 1.0), *W = tu_randn(rng, (int64_t)out * in, 0.3);
    float *y = tu_randn(rng, (int64_t)T * out, 1.0); /* garbage: must be overwritten */
    double *ref = TU_NEW(double, (int64_t)T * out);
    for (int t = 0; t < T; t++)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int i = 0; i < in; i++) s += (double)x[(int64_t)t * in + i] * W[(int64_t)o * in + i];
            ref[(int64_t)t * out + o] = s;
        }
    matmul_forward(y, x, W, T, in, out);
    char what[96];
    snprintf(what, sizeof what, "forward T=%d in=%d out=%d vs naive", T, in, out);
    tu_check(what, tu_relerr(y, ref, (int64_t)T * out), 1e-5);
    free(x), free(W), free(y), free(ref);
}

static void check_backward(sc_rng *rng, int T, int in, int out) {
    int64_t nx = (int64_t)T * in, nw = (int64_t)out * in, ny = (int64_t)T * out;
    mm_ctx c = {tu_randn(rng, nx, 1.0), tu_randn(rng, nw, 0.3), tu_randn(rng, ny, 1.0), TU_NEW(float, ny), T, in, out};
    float *dx0 = tu_randn(rng, nx, 1.0), *dW0 = tu_randn(rng, nw, 1.0);
    float *dx = tu_copy(dx0, nx), *dW = tu_copy(dW0, nw);
    matmul_backward(dx, dW, c.R, c.x, c.W, T, in, out);
    double *gx = TU_NEW(double, nx), *gw = TU_NEW(double, nw);
    tu_fd_grad(gx, c.x, nx, 1e-3f, mm_loss, &c);
    tu_fd_grad(gw, c.W, nw, 1e-3f, mm_loss, &c);
    float *ddx = tu_sub(dx, dx0, nx), *ddW = tu_sub(dW, dW0, nw);
    tu_check("backward dx (accumulated) vs finite differences", tu_relerr(ddx, gx, nx), 1e-3);
    tu_check("backward dW (accumulated) vs finite differences", tu_relerr(ddW, gw, nw), 1e-3);
    /* dx NULL: dW still accumulated, the same way */
    float *dW2 = tu_copy(dW0, nw);
    matmul_backward(NULL, dW2, c.R, c.x, c.W, T, in, out);
    tu_check("backward with dx NULL gives the same dW", tu_maxabs_diff(dW2, dW, nw), 0.0);
    free(c.x), free(c.W), free(c.R), free(c.y), free(dx0), free(dW0), free(dx), free(dW), free(gx), free(gw);
    free(ddx), free(ddW), free(dW2);
}

typedef struct {
    float *y0, *b, *R, *y;
    int T, out;
} bias_ctx;

static double bias_loss(void *p) {
    bias_ctx *c = p;
    memcpy(c->y, c->y0, sizeof(float) * (size_t)c->T * (size_t)c->out);
    bias_forward(c->y, c->b, c->T, c->out);
    return tu_dot(c->y, c->R, (int64_t)c->T * c->out);
}

static void check_bias(sc_rng *rng, int T, int out) {
    int64_t ny = (int64_t)T * out;
    bias_ctx c = {tu_randn(rng, ny, 1.0), tu_randn(rng, out, 0.5), tu_randn(rng, ny, 1.0), TU_NEW(float, ny), T, out};
    bias_loss(&c);
    double *ref = TU_NEW(double, ny);
    for (int64_t i = 0; i < ny; i++) ref[i] = (double)c.y0[i] + c.b[i % out];
    char what[96];
    snprintf(what, sizeof what, "bias forward T=%d out=%d vs loop", T, out);
    tu_check(what, tu_relerr(c.y, ref, ny), 1e-7);
    float *db0 = tu_randn(rng, out, 1.0), *db = tu_copy(db0, out);
    bias_backward(db, c.R, T, out);
    double *g = TU_NEW(double, out);
    tu_fd_grad(g, c.b, out, 1e-2f, bias_loss, &c);
    float *ddb = tu_sub(db, db0, out);
    snprintf(what, sizeof what, "bias backward T=%d out=%d (accumulated) vs finite differences", T, out);
    tu_check(what, tu_relerr(ddb, g, out), 1e-3);
    bias_backward(NULL, c.R, T, out); /* no bias: nothing to do, no crash */
    bias_forward(c.y, NULL, T, out);
    free(c.y0), free(c.b), free(c.R), free(c.y), free(ref), free(db0), free(db), free(g), free(ddb);
}

int main(void) {
    sc_rng rng;
    rng_seed(&rng, 1234);
    check_forward(&rng, 7, 12, 10);
    check_forward(&rng, 130, 67, 45);
    check_forward(&rng, 1, 300, 3);
    check_backward(&rng, 7, 12, 10);
    check_backward(&rng, 13, 5, 9);
    check_bias(&rng, 1, 7);
    check_bias(&rng, 37, 45);
    return tu_finish("test_cpu_matmul");
}
