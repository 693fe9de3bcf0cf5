/* test_cpu_attention.c — causal GQA attention. Forward output and lse against a naive double implementation
 * (T = 7 and T = 64, 65, 300 so query blocks, the diagonal mask and a partial last block are exercised);
 * backward against central finite differences of L = sum(out * R) at T = 7 for nkv = 1, 2, 4, and against a naive
 * double backward at T = 300 with 1 and 3 threads (dk/dv pre-filled with garbage to check they are overwritten),
 * and that two backward runs are bit-identical. */
#include <omp.h>

#include "host/cpu/ops.h"
#include "tests/testutil.h"

typedef struct {
    int T, nh, nkv, hd;
} shape;

/* out and lse in double; P recomputed per row with exact softmax */
static void attn_naive(double *out, double *lse, const float *q, const float *k, const float *v, shape s) {
    int qs = s.nh * s.hd, ks = s.nkv * s.hd, grp = s.nh / s.nkv;
    double scale = 1.0 / sqrt(s.hd), *p = TU_NEW(double, s.T);
    for (int h = 0; h < s.nh; h++)
        for (int t = 0; t < s.T; t++) {
            const float *qr = q + t * qs + h * s.hd;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j <= t; j++) {
                const float *kr = k + j * ks + (h / grp) * s.hd;
                double d = 0;
                for (int c = 0; c < s.hd; c++) d += (double)qr[c] * kr[c];
                p[j] = d * scale;
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j <= t; j++) sum += (p[j] = exp(p[j] - mx));
            lse[h * s.T + t] = mx + log(sum);
            for (int c = 0; c < s.hd; c++) {
                double o = 0;
                for (int j = 0; j <= t; j++) o += p[j] / sum * v[j * ks + (h / grp) * s.hd + c];
                out[t * qs + h * s.hd + c] = o;
            }
        }
    free(p);
}

/* dq, dk, dv of L = sum(out * dout), all in double */
static void attn_naive_backward(double *dq, double *dk, double *dv, const float *dout, const float *q, const float *k,
                                const float *v, shape s) {
    int qs = s.nh * s.hd, ks = s.nkv * s.hd, grp = s.nh / s.nkv;
    double scale = 1.0 / sqrt(s.hd), *p = TU_NEW(double, s.T), *dp = TU_NEW(double, s.T);
    memset(dq, 0, sizeof(double) * s.T * qs);
    memset(dk, 0, sizeof(double) * s.T * ks);
    memset(dv, 0, sizeof(double) * s.T * ks);
    for (int h = 0; h < s.nh; h++)
        for (int t = 0; t < s.T; t++) {
            const float *qr = q + t * qs + h * s.hd, *dor = dout + t * qs + h * s.hd;
            int ko = (h / grp) * s.hd;
            double mx = -INFINITY, sum = 0, dsum = 0;
            for (int j = 0; j <= t; j++) {
                double d = 0;
                for (int c = 0; c < s.hd; c++) d += (double)qr[c] * k[j * ks + ko + c];
                p[j] = d * scale;
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j <= t; j++) sum += (p[j] = exp(p[j] - mx));
            for (int j = 0; j <= t; j++) {
                p[j] /= sum;
                double d = 0;
                for (int c = 0; c < s.hd; c++) d += (double)dor[c] * v[j * ks + ko + c];
                dp[j] = d;
                dsum += p[j] * d;
            }
            for (int j = 0; j <= t; j++) {
                double ds = p[j] * (dp[j] - dsum) * scale;
                for (int c = 0; c < s.hd; c++) {
                    dq[t * qs + h * s.hd + c] += ds * k[j * ks + ko + c];
                    dk[j * ks + ko + c] += ds * qr[c];
                    dv[j * ks + ko + c] += p[j] * dor[c];
                }
            }
        }
    free(p), free(dp);
}

typedef struct {
    shape s;
    float *q, *k, *v, *R, *out, *lse;
} at_ctx;

static double at_loss(void *p) {
    at_ctx *c = p;
    attention_forward(c->out, c->lse, c->q, c->k, c->v, c->s.T, c->s.nh, c->s.nkv, c->s.hd);
    return tu_dot(c->out, c->R, (int64_t)c->s.T * c->s.nh * c->s.hd);
}

static at_ctx at_make(sc_rng *rng, shape s) {
    int64_t nq = (int64_t)s.T * s.nh * s.hd, nk = (int64_t)s.T * s.nkv * s.hd;
    /* scale 1.5: scores of a few units, so the softmax is far from uniform */
    at_ctx c = {s, tu_randn(rng, nq, 1.5), tu_randn(rng, nk, 1.5), tu_randn(rng, nk, 1.0), tu_randn(rng, nq, 1.0),
                tu_randn(rng, nq, 1.0), tu_randn(rng, (int64_t)s.nh * s.T, 1.0)};
    return c;
}

static void at_free(at_ctx *c) { free(c->q), free(c->k), free(c->v), free(c->R), free(c->out), free(c->lse); }

static void check_forward(sc_rng *rng, shape s) {
    at_ctx c = at_make(rng, s);
    int64_t nq = (int64_t)s.T * s.nh * s.hd;
    double *ref = TU_NEW(double, nq), *lref = TU_NEW(double, (int64_t)s.nh * s.T);
    attn_naive(ref, lref, c.q, c.k, c.v, s);
    attention_forward(c.out, c.lse, c.q, c.k, c.v, s.T, s.nh, s.nkv, s.hd);
    char what[96];
    snprintf(what, sizeof what, "forward T=%d nh=%d nkv=%d hd=%d out vs naive", s.T, s.nh, s.nkv, s.hd);
    tu_check(what, tu_relerr(c.out, ref, nq), 2e-6);
    snprintf(what, sizeof what, "forward T=%d nh=%d nkv=%d hd=%d lse vs naive", s.T, s.nh, s.nkv, s.hd);
    tu_check(what, tu_relerr(c.lse, lref, (int64_t)s.nh * s.T), 2e-6);
    free(ref), free(lref), at_free(&c);
}

/* fd = 1: finite differences (small T), else the naive double backward */
static void check_backward(sc_rng *rng, shape s, int fd) {
    at_ctx c = at_make(rng, s);
    int64_t nq = (int64_t)s.T * s.nh * s.hd, nk = (int64_t)s.T * s.nkv * s.hd;
    attention_forward(c.out, c.lse, c.q, c.k, c.v, s.T, s.nh, s.nkv, s.hd);
    float *dq = tu_randn(rng, nq, 1.0), *dk = tu_randn(rng, nk, 1.0), *dv = tu_randn(rng, nk, 1.0); /* garbage */
    attention_backward(dq, dk, dv, c.R, c.q, c.k, c.v, c.out, c.lse, s.T, s.nh, s.nkv, s.hd);
    double *gq = TU_NEW(double, nq), *gk = TU_NEW(double, nk), *gv = TU_NEW(double, nk);
    if (fd) {
        tu_fd_grad(gq, c.q, nq, 1e-3f, at_loss, &c);
        tu_fd_grad(gk, c.k, nk, 1e-3f, at_loss, &c);
        tu_fd_grad(gv, c.v, nk, 1e-3f, at_loss, &c);
    } else {
        attn_naive_backward(gq, gk, gv, c.R, c.q, c.k, c.v, s);
    }
    double tol = fd ? 1e-3 : 1e-5;
    const char *how = fd ? "finite differences" : "naive backward";
    char what[96];
    snprintf(what, sizeof what, "backward T=%d nh=%d nkv=%d hd=%d dq vs %s", s.T, s.nh, s.nkv, s.hd, how);
    tu_check(what, tu_relerr(dq, gq, nq), tol);
    snprintf(what, sizeof what, "backward T=%d nh=%d nkv=%d hd=%d dk vs %s", s.T, s.nh, s.nkv, s.hd, how);
    tu_check(what, tu_relerr(dk, gk, nk), tol);
    snprintf(what, sizeof what, "backward T=%d nh=%d nkv=%d hd=%d dv vs %s", s.T, s.nh, s.nkv, s.hd, how);
    tu_check(what, tu_relerr(dv, gv, nk), tol);
    free(dq), free(dk), free(dv), free(gq), free(gk), free(gv), at_free(&c);
}

/* two runs of the backward with the same thread count give the same bits */
static void check_deterministic(sc_rng *rng, shape s) {
    at_ctx c = at_make(rng, s);
    int64_t nq = (int64_t)s.T * s.nh * s.hd, nk = (int64_t)s.T * s.nkv * s.hd;
    attention_forward(c.out, c.lse, c.q, c.k, c.v, s.T, s.nh, s.nkv, s.hd);
    float *g[2][3];
    for (int run = 0; run < 2; run++) {
        g[run][0] = TU_NEW(float, nq), g[run][1] = TU_NEW(float, nk), g[run][2] = TU_NEW(float, nk);
        attention_backward(g[run][0], g[run][1], g[run][2], c.R, c.q, c.k, c.v, c.out, c.lse, s.T, s.nh, s.nkv, s.hd);
    }
    double d = fmax(tu_maxabs_diff(g[0][0], g[1][0], nq),
                    fmax(tu_maxabs_diff(g[0][1], g[1][1], nk), tu_maxabs_diff(g[0][2], g[1][2], nk)));
    tu_check("backward twice: bit-identical dq, dk, dv", d, 0.0);
    for (int run = 0; run < 2; run++) free(g[run][0]), free(g[run][1]), free(g[run][2]);
    at_free(&c);
}

int main(void) {
    sc_rng rng;
    rng_seed(&rng, 2024);
    const int nkvs[3] = {1, 2, 4};
    for (int i = 0; i < 3; i++) {
        shape s = {7, 4, nkvs[i], 6};
        check_forward(&rng, s);
        check_backward(&rng, s, 1);
    }
    check_forward(&rng, (shape){64, 2, 1, 8});
    check_forward(&rng, (shape){65, 2, 1, 8});
    check_forward(&rng, (shape){300, 4, 2, 8});
    check_forward(&rng, (shape){300, 16, 4, 72});
    /* the backward's per-thread dK/dV copies: one thread, three threads (more than this machine's cores) */
    for (int nt = 1; nt <= 3; nt += 2) {
        omp_set_num_threads(nt);
        printf("-- %d thread(s)\n", nt);
        check_backward(&rng, (shape){300, 4, 2, 8}, 0);
        check_backward(&rng, (shape){130, 4, 4, 6}, 0);
    }
    check_deterministic(&rng, (shape){300, 4, 2, 8});
    return tu_finish("test_cpu_attention");
}
