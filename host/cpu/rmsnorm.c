/* rmsnorm.c — HF Llama RMSNorm fused with the residual add before it:
 *   resid_out = resid_in + delta,  norm_out = resid_out * rstd * weight,  rstd = 1/sqrt(mean(resid_out^2) + eps).
 * The row statistics are accumulated in double (cheap at C ~ 1k, and it keeps this the accurate reference). */
#include <math.h>
#include <stddef.h>

#include "host/cpu/ops.h"
#include "host/cpu/par.h"

void rmsnorm_forward(float *resid_out, float *norm_out, float *rstd, const float *resid_in, const float *delta,
                     const float *weight, int T, int C, float eps) {
#pragma omp parallel for schedule(static) if (PAR((int64_t)T * C))
    for (int t = 0; t < T; t++) {
        const float *a = resid_in + (int64_t)t * C;
        float *r = resid_out + (int64_t)t * C, *o = norm_out + (int64_t)t * C;
        double ss = 0.0;
        if (delta) {
            const float *b = delta + (int64_t)t * C;
#pragma omp simd reduction(+ : ss)
            for (int c = 0; c < C; c++) {
                float v = a[c] + b[c];
                r[c] = v;
                ss += (double)v * v;
            }
        } else {
#pragma omp simd reduction(+ : ss)
            for (int c = 0; c < C; c++) {
                float v = a[c];
                r[c] = v; /* may alias a: same value */
                ss += (double)v * v;
            }
        }
        float rs = (float)(1.0 / sqrt(ss / C + (double)eps));
        rstd[t] = rs;
        /* HF order: (x * rstd) in float, then times weight */
        for (int c = 0; c < C; c++) o[c] = weight[c] * (r[c] * rs);
    }
}

enum { RMS_COLS = 64 }; /* dweight columns per work item */

/* With y_c = w_c x_c r, r = (mean(x^2) + eps)^-1/2:
 *   dx_c = r w_c dy_c - x_c r^3 / C * sum_k(dy_k w_k x_k),   dw_c = sum_t dy_c x_c r. */
void rmsnorm_backward(float *dresid_total, float *dweight_acc, const float *dnorm, const float *dresid,
                      const float *resid_out, const float *rstd, const float *weight, int T, int C) {
    /* dweight first, before dresid_total (which may alias dresid) is written. Each work item owns a block of
     * columns and sums over all tokens in order: no cross-thread reduction, same bits for any thread count. */
    int nblocks = dweight_acc ? (C + RMS_COLS - 1) / RMS_COLS : 0; /* NULL: a frozen weight (LoRA) */
#pragma omp parallel for schedule(static) if (PAR((int64_t)T * C))
    for (int b = 0; b < nblocks; b++) {
        int c0 = b * RMS_COLS, n = C - c0 < RMS_COLS ? C - c0 : RMS_COLS;
        double acc[RMS_COLS] = {0};
        for (int t = 0; t < T; t++) {
            const float *dy = dnorm + (int64_t)t * C + c0, *x = resid_out + (int64_t)t * C + c0;
            double rs = rstd[t];
#pragma omp simd
            for (int c = 0; c < n; c++) acc[c] += (double)dy[c] * x[c] * rs;
        }
        for (int c = 0; c < n; c++) dweight_acc[c0 + c] += (float)acc[c];
    }

#pragma omp parallel for schedule(static) if (PAR((int64_t)T * C))
    for (int t = 0; t < T; t++) {
        const float *dy = dnorm + (int64_t)t * C, *x = resid_out + (int64_t)t * C;
        const float *dr = dresid ? dresid + (int64_t)t * C : NULL;
        float *out = dresid_total + (int64_t)t * C;
        double dot = 0.0;
#pragma omp simd reduction(+ : dot)
        for (int c = 0; c < C; c++) dot += (double)dy[c] * weight[c] * x[c];
        float rs = rstd[t];
        float k = (float)(dot * ((double)rs * rs * rs) / C);
        for (int c = 0; c < C; c++) {
            float g = rs * weight[c] * dy[c] - x[c] * k;
            out[c] = dr ? dr[c] + g : g;
        }
    }
}
