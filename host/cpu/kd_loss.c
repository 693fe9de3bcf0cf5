/* kd_loss.c — CPU twin of the fused KD classifier (see kd_loss.h). Per chunk of rows: logits = x W^T (sgemm),
 * then per row: CE statistics, the student's softmax at temperature T (exponentials kept in the dlogits row),
 * the k+1 bucket distributions of teacher and student, the KL and its gradient written into the same row,
 * plus the CE gradient; then dx = dlogits W and dW += dlogits^T x (sgemm). Deterministic (row sums in order).
 *
 * Gradient with respect to u = z/T (s = softmax(u), q_b = bucket masses of s, p_b = the teacher's):
 *   forward KL(p||q): dKL/du_j = s_j - p_j (top-k j);  s_j - p_tail * e_j / S_tail (tail j, S_tail = tail sum)
 *   reverse KL(q||p): dKL/du_j = s_j * (log q_b(j) - log p_b(j) - KL)
 * and dz = du / T, times alpha * T^2. */
#include "host/cpu/kd_loss.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/cpu/par.h"
#include "host/cpu/vexp.h"

enum { KD_CHUNK_VALUES = 1 << 22, KD_CHUNK_MIN = 16, KD_CHUNK_MAX = 256, KD_MAXK = 1024 };

/* One row: z = student logits [V], dr = dlogits out [V]. Returns the row's loss; *ce its cross-entropy. */
static double kd_row(float *dr, double *ce, const float *z, int tgt, const int32_t *ids, const float *ta, float tl,
                     int k, int V, float alpha, float Temp, int reverse, float loss_scale) {
    float mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
    double sum1 = vexp_sum(NULL, z, mx, 1.0f, V);
    *ce = (double)mx + log(sum1) - (double)z[tgt];
    const float invT = 1.0f / Temp;
    /* student at temperature T: e_j = exp((z_j - mx)/T) kept in dr */
    double ZT = vexp_sum(dr, z, mx, invT, V);
    double e_top[KD_MAXK], stail = 0.0;
    for (int i = 0; i < k; i++) e_top[i] = dr[ids[i]], dr[ids[i]] = 0.0f;
    const int has_tail = k < V;
    /* the tail sum without the top-k: sum of the row with those entries zeroed */
    if (has_tail) {
        stail = 0.0;
        for (int j0 = 0; j0 < V; j0 += 1024) {
            int j1 = V - j0 < 1024 ? V : j0 + 1024;
            float part = 0.0f;
#pragma omp simd reduction(+ : part)
            for (int j = j0; j < j1; j++) part += dr[j];
            stail += part;
        }
        if (stail < 1e-300) stail = 1e-300;
    }
    /* teacher buckets at T, in log space */
    double lw[KD_MAXK + 1], m = -INFINITY, ptop = 0.0;
    for (int i = 0; i < k; i++) {
        ptop += exp((double)ta[i] - (double)tl);
        lw[i] = (double)ta[i] * invT;
        if (lw[i] > m) m = lw[i];
    }
    if (has_tail) {
        double ptail1 = 1.0 - ptop;
        if (ptail1 < 1e-8) ptail1 = 1e-8;
        double at = (double)tl + log(ptail1 / (double)(V - k));  /* each tail id's logit, uniform spread */
        lw[k] = log((double)(V - k)) + at * invT;
        if (lw[k] > m) m = lw[k];
    }
    int nb = k + has_tail;
    double zs = 0.0;
    for (int b = 0; b < nb; b++) zs += exp(lw[b] - m);
    double lzs = log(zs), logZT = log(ZT), kl = 0.0, p[KD_MAXK + 1], g[KD_MAXK + 1];
    for (int b = 0; b < nb; b++) {
        double lp = lw[b] - m - lzs;
        double lq = b < k ? (double)(z[ids[b]] - mx) * invT - logZT : log(stail) - logZT;
        p[b] = exp(lp);
        g[b] = lq - lp;
        kl += reverse ? exp(lq) * g[b] : -p[b] * g[b];
    }
    const double kdw = (double)alpha * Temp * Temp * loss_scale, cew = (1.0 - alpha) * loss_scale;
    /* tail ids: kdw/T * e_j * (fwd: 1/ZT - p_tail/S_tail; rev: (g_tail - KL)/ZT) */
    float ct = 0.0f;
    if (has_tail) ct = (float)(kdw * invT * (reverse ? (g[k] - kl) / ZT : 1.0 / ZT - p[k] / stail));
#pragma omp simd
    for (int j = 0; j < V; j++) dr[j] *= ct;
    for (int i = 0; i < k; i++) {
        double s = e_top[i] / ZT;
        dr[ids[i]] = (float)(kdw * invT * (reverse ? s * (g[i] - kl) : s - p[i]));
    }
    if (cew != 0.0) {
        float c = (float)(cew / sum1);
#pragma omp simd
        for (int j = 0; j < V; j++) dr[j] += c * vexp(z[j] - mx);
        dr[tgt] -= (float)cew;
    }
    return (double)alpha * Temp * Temp * kl + (1.0 - alpha) * *ce;
}

double kd_classifier_forward_backward(float *losses, float *ce_out, float *dx, float *dW_acc, const float *x,
                                      const float *W, const int32_t *targets, const kd_targets *kd, int T, int C,
                                      int V, float loss_scale) {
    if (T <= 0 || V <= 0) return 0.0;
    const int k = kd->k;
    int chunk = KD_CHUNK_VALUES / V;
    chunk = chunk < KD_CHUNK_MIN ? KD_CHUNK_MIN : chunk > KD_CHUNK_MAX ? KD_CHUNK_MAX : chunk;
    chunk = T < chunk ? T : chunk;
    float *logits = sc_malloc(sizeof(float) * (size_t)chunk * (size_t)V);
    float *dl = sc_malloc(sizeof(float) * (size_t)chunk * (size_t)V);
    double total = 0.0;
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int n = T - t0 < chunk ? T - t0 : chunk;
        const float *xc = x + (int64_t)t0 * C;
        if (C > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, V, C, 1.0f, xc, C, W, C, 0.0f, logits, V);
        else
            memset(logits, 0, sizeof(float) * (size_t)n * (size_t)V);
        int any = 0;
#pragma omp parallel for schedule(static) if (PAR((int64_t)n * V)) reduction(| : any)
        for (int r = 0; r < n; r++) {
            int t = t0 + r, tgt = targets[t];
            float *dr = dl + (int64_t)r * V;
            if (tgt < 0 || tgt >= V || k < 1 || k > KD_MAXK || k > V) {
                memset(dr, 0, sizeof(float) * (size_t)V);
                losses[t] = 0.0f;
                if (ce_out) ce_out[t] = 0.0f;
                continue;
            }
            double ce;
            losses[t] = (float)kd_row(dr, &ce, logits + (int64_t)r * V, tgt, kd->ids + (int64_t)t * k,
                                      kd->logits + (int64_t)t * k, kd->lse[t], k, V, kd->alpha, kd->temperature,
                                      kd->reverse, loss_scale);
            if (ce_out) ce_out[t] = (float)ce;
            any = 1;
        }
        for (int r = 0; r < n; r++) total += losses[t0 + r];
        if (!dx || C <= 0) continue;
        float *dxc = dx + (int64_t)t0 * C;
        if (!any) {
            memset(dxc, 0, sizeof(float) * (size_t)n * (size_t)C);
            continue;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, C, V, 1.0f, dl, V, W, C, 0.0f, dxc, C);
        if (dW_acc)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, n, 1.0f, dl, V, xc, C, 1.0f, dW_acc, C);
    }
    free(logits), free(dl);
    return total;
}
