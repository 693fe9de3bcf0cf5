/* gpu_test.h — helpers of the GPU tests (tests/gpu/test_*.c): skip with exit 77 when there is no device, device
 * buffers filled from host floats (FP16 or FP32), downloads, and comparisons against the CPU twin. Inputs are
 * rounded to FP16 on the host first, so the CPU reference sees exactly the values the GPU stores and a difference
 * measures the kernel, not the input rounding. Outputs are allocated filled with NaN bytes: a value the kernel
 * forgot to write fails the comparison. SC_GPU_TEST_QUICK=1 leaves out the large shapes (sanitizers, emulator). */
#ifndef SC_GPU_TEST_H
#define SC_GPU_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "host/half.h"
#include "kernels/kernels.h"
#include "host/model.h"
#include "host/rng.h"
#include "tests/testutil.h"

#define GT_CHECK(call)                                                                                             \
    do {                                                                                                           \
        cudaError_t gt_e_ = (call);                                                                                \
        if (gt_e_ != cudaSuccess) {                                                                                \
            fprintf(stderr, "%s:%d: CUDA error %s in %s\n", __FILE__, __LINE__, cudaGetErrorString(gt_e_), #call); \
            exit(1);                                                                                               \
        }                                                                                                          \
    } while (0)

static inline void gt_require_device(const char *name) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        printf("%s: SKIP: no CUDA device (%s)\n", name, e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        exit(77);
    }
    struct cudaDeviceProp p;
    GT_CHECK(cudaGetDeviceProperties(&p, 0));
    printf("%s: on %s (sm_%d%d)\n", name, p.name, p.major, p.minor);
}

static inline int gt_quick(void) {
    const char *e = getenv("SC_GPU_TEST_QUICK");
    return e && *e && strcmp(e, "0") != 0;
}

/* device memory filled with 0xff bytes (NaN as FP16 and as FP32) */
static inline void *gt_alloc(size_t bytes) {
    void *p = NULL;
    GT_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    GT_CHECK(cudaMemset(p, 0xff, bytes ? bytes : 1));
    return p;
}

static inline void gt_round_half(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = half_to_float(float_to_half(x[i]));
}

/* Norm weights drawn from N(1, 0.2) (model_init_weights sets them to 1, which would hide a norm-weight bug), then
 * every parameter rounded to FP16: the weights the GPU holds, so the CPU twin starts from the same ones. */
static inline void gt_model_random_norms(sc_model *m, sc_rng *r) {
    for (int i = 0; i < m->ntensors; i++)
        if (m->table[i].ndim == 1)
            for (int64_t j = 0; j < m->table[i].numel; j++)
                m->params[m->table[i].offset + j] = (float)(1.0 + 0.2 * rng_normal(r));
    gt_round_half(m->params, m->nparams);
}

/* A model of cfg's shape for the CUDA model tests: model_init_weights(seed, std), then gt_model_random_norms from
 * *r seeded with seed + 100 (the caller draws its tokens from r after). */
static inline void gt_model_random(sc_model *m, const sc_config *cfg, uint64_t seed, float std, sc_rng *r) {
    model_create(m, cfg);
    model_init_weights(m, seed, std);
    rng_seed(r, seed + 100);
    gt_model_random_norms(m, r);
}

/* T random ids below V from r and their targets (the next id; the last position and, when T > 4, position 3 are
 * ignored: -1), both allocated */
static inline void gt_model_tokens(sc_rng *r, int T, int V, int32_t **ids, int32_t **tg) {
    *ids = TU_NEW(int32_t, T), *tg = TU_NEW(int32_t, T);
    for (int t = 0; t < T; t++) (*ids)[t] = (int32_t)rng_below(r, (uint64_t)V);
    for (int t = 0; t < T; t++) (*tg)[t] = t + 1 < T ? (*ids)[t + 1] : -1;
    if (T > 4) (*tg)[3] = -1;
}

static inline kn_half *gt_up_half(const float *x, int64_t n) {
    uint16_t *h = TU_NEW(uint16_t, n);
    for (int64_t i = 0; i < n; i++) h[i] = float_to_half(x[i]);
    kn_half *d = gt_alloc(sizeof(kn_half) * (size_t)n);
    GT_CHECK(cudaMemcpy(d, h, sizeof(kn_half) * (size_t)n, cudaMemcpyHostToDevice));
    free(h);
    return d;
}

static inline void gt_down_half(float *x, const kn_half *d, int64_t n) {
    uint16_t *h = TU_NEW(uint16_t, n);
    GT_CHECK(cudaDeviceSynchronize());
    GT_CHECK(cudaMemcpy(h, d, sizeof(kn_half) * (size_t)n, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < n; i++) x[i] = half_to_float(h[i]);
    free(h);
}

static inline float *gt_up_f32(const float *x, int64_t n) {
    float *d = gt_alloc(sizeof(float) * (size_t)n);
    GT_CHECK(cudaMemcpy(d, x, sizeof(float) * (size_t)n, cudaMemcpyHostToDevice));
    return d;
}

static inline void gt_down_f32(float *x, const float *d, int64_t n) {
    GT_CHECK(cudaDeviceSynchronize());
    GT_CHECK(cudaMemcpy(x, d, sizeof(float) * (size_t)n, cudaMemcpyDeviceToHost));
}

static inline int32_t *gt_up_i32(const int32_t *x, int64_t n) {
    int32_t *d = gt_alloc(sizeof(int32_t) * (size_t)n);
    GT_CHECK(cudaMemcpy(d, x, sizeof(int32_t) * (size_t)n, cudaMemcpyHostToDevice));
    return d;
}

/* normal(0, scale) floats already rounded to FP16 values */
static inline float *gt_randn_half(sc_rng *r, int64_t n, double scale) {
    float *x = tu_randn(r, n, scale);
    gt_round_half(x, n);
    return x;
}

/* ||a - ref||^2 into *num and ||ref||^2 into *den, in double; -1 when a holds a NaN or inf */
static inline int gt_sq_sums(const float *a, const float *ref, int64_t n, double *num, double *den) {
    *num = *den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return -1;
        double d = (double)a[i] - ref[i];
        *num += d * d;
        *den += (double)ref[i] * ref[i];
    }
    return 0;
}

/* ||a - ref|| / ||ref|| in double (absolute when ref is zero); +inf when a holds a NaN or inf */
static inline double gt_relerr(const float *a, const float *ref, int64_t n) {
    double num, den;
    if (gt_sq_sums(a, ref, n, &num, &den)) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* gt_relerr with the denominator at least rms_floor * sqrt(n): for a reference that is zero up to rounding (the
 * attention gradients of a one-token sequence), where a relative error would only compare two roundings */
static inline double gt_relerr_floor(const float *a, const float *ref, int64_t n, double rms_floor) {
    double num, den, fl = rms_floor * rms_floor * (double)n;
    if (gt_sq_sums(a, ref, n, &num, &den)) return INFINITY;
    return sqrt(num / (den > fl ? den : fl));
}

/* Among the parameter tensors of m whose name contains part (NULL: all), the one whose gradient in got (laid out
 * as m's parameters) is furthest from ref by gt_relerr: its error, and its name in *name; with tol > 0, each one
 * beyond tol printed. */
static inline double gt_worst_grad_in(const sc_model *m, const char *part, const float *got, const float *ref,
                                      double tol, const char **name) {
    double worst = 0;
    *name = "";
    for (int i = 0; i < m->ntensors; i++) {
        const sc_param *p = &m->table[i];
        if (part && !strstr(p->name, part)) continue;
        double e = gt_relerr(got + p->offset, ref + p->offset, p->numel);
        if (!(e <= worst)) worst = e, *name = p->name;
        if (tol > 0 && !(e <= tol)) printf("     grad %-48s err %.3g\n", p->name, e);
    }
    return worst;
}

/* gt_worst_grad_in over all tensors */
static inline double gt_worst_grad(const sc_model *m, const float *got, const float *ref, double tol,
                                   const char **name) {
    return gt_worst_grad_in(m, NULL, got, ref, tol, name);
}

static inline double gt_maxabs(const float *a, const float *ref, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        m = fmax(m, fabs((double)a[i] - ref[i]));
    }
    return m;
}

/* 0 when the two host arrays are bit-identical (determinism checks) */
static inline double gt_bitdiff(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) ? 1.0 : 0.0; }

static inline void gt_free(const void *p) { GT_CHECK(cudaFree((void *)p)); }
#define GT_FREE(p) gt_free(p)

#endif
