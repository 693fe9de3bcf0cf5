/* testutil.h — helpers shared by the CPU op tests: seeded random arrays, relative errors, central finite
 * differences and pass/fail bookkeeping. A test prints one line per check and exits 1 if any check failed. */
#ifndef SC_TESTUTIL_H
#define SC_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/rng.h"

static int tu_failures, tu_checks;

static inline void *tu_alloc(size_t bytes) {
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}
#define TU_NEW(type, n) ((type *)tu_alloc(sizeof(type) * (size_t)(n)))

/* normal(0, scale) floats */
static inline float *tu_randn(sc_rng *r, int64_t n, double scale) {
    float *p = TU_NEW(float, n);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(scale * rng_normal(r));
    return p;
}

static inline float *tu_copy(const float *src, int64_t n) {
    float *p = TU_NEW(float, n);
    memcpy(p, src, sizeof(float) * (size_t)n);
    return p;
}

/* ||a - ref|| / ||ref|| (absolute when ref is all zero) */
static inline double tu_relerr(const float *a, const double *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = a[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static inline double tu_maxabs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Records a check: err must be <= tol (and not NaN). */
static inline void tu_check(const char *what, double err, double tol) {
    int ok = err <= tol;
    tu_checks++;
    if (!ok) tu_failures++;
    printf("%-4s %-60s err %.3g (tol %.3g)\n", ok ? "ok" : "FAIL", what, err, tol);
}

static inline int tu_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, tu_checks, tu_failures);
    return tu_failures ? 1 : 0;
}

/* sum(out * R) in double: the scalar loss whose gradient w.r.t. out is R */
static inline double tu_dot(const float *out, const float *R, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)out[i] * R[i];
    return s;
}

/* Central differences dL/dx[i] for every i, perturbing x in place (restored afterwards). The denominator is the
 * step actually taken in float, not 2h. */
typedef double (*tu_loss_fn)(void *ctx);
static inline void tu_fd_grad(double *g, float *x, int64_t n, float h, tu_loss_fn loss, void *ctx) {
    for (int64_t i = 0; i < n; i++) {
        float x0 = x[i], xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double lp = loss(ctx);
        x[i] = xm;
        double lm = loss(ctx);
        x[i] = x0;
        g[i] = (lp - lm) / ((double)xp - (double)xm);
    }
}

/* Central differences (tu_fd_grad) of the rows rows[0..nr) of x [., C] into gx [nr, C], and those rows of the
 * analytic gradient dx gathered into dxs [nr, C] beside them, for tu_relerr(dxs, gx, nr * C). */
static inline void tu_fd_rows(double *gx, float *dxs, float *x, const float *dx, const int *rows, int nr, int C,
                              float h, tu_loss_fn loss, void *ctx) {
    for (int i = 0; i < nr; i++) {
        tu_fd_grad(gx + (size_t)i * C, x + (size_t)rows[i] * C, C, h, loss, ctx);
        memcpy(dxs + (size_t)i * C, dx + (size_t)rows[i] * C, sizeof(float) * (size_t)C);
    }
}

/* a - b elementwise into a new array (for "accumulated gradient minus its initial value") */
static inline float *tu_sub(const float *a, const float *b, int64_t n) {
    float *p = TU_NEW(float, n);
    for (int64_t i = 0; i < n; i++) p[i] = a[i] - b[i];
    return p;
}

#endif
