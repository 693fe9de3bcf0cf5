/* attention.c — causal GQA attention (scale 1/sqrt(hd)), FlashAttention-style on the CPU: the work is cut into
 * (query head, block of ATT_BQ query rows) items; each item computes its scores against keys [0, end of block)
 * with one sgemm, masks only the diagonal block, and never holds more than ATT_BQ x T scores. The backward
 * recomputes the probabilities from the saved logsumexp. Items run in parallel (OpenMP), each calling a
 * single-threaded sgemm. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ops.h"
#include "par.h"
#include "vexp.h"

enum { ATT_BQ = 64 }; /* query rows per block: scores of one block stay in L2 (64 x 4096 x 4 B = 1 MB at most) */

/* OpenBLAS built with pthreads would make every sgemm inside our OpenMP loop wake its own thread pool; the calls
 * then serialise on its lock and the two pools fight for the cores. So while our parallel loop runs, OpenBLAS is
 * told to use one thread. (The OpenMP build of OpenBLAS does this by itself; the sequential one needs nothing.)
 * This touches OpenBLAS's global setting, so attention must not run concurrently with other BLAS callers. */
static int att_blas_single_begin(int parallel) {
    if (!parallel || openblas_get_parallel() != 1) return 0;
    int n = openblas_get_num_threads();
    if (n > 1) openblas_set_num_threads(1);
    return n;
}

static void att_blas_single_end(int saved) {
    if (saved > 1) openblas_set_num_threads(saved);
}

typedef struct {
    int T, nh, nkv, hd, nb;
    int64_t qs, ks; /* row strides of q/out and of k/v */
    float scale;
} att_dims;

/* Multiply-adds of the causal score and value products: small problems run on the calling thread. */
static int att_parallel(const att_dims *d) { return PAR((int64_t)d->T * (d->T + 1) / 2 * d->nh * d->hd); }

static att_dims att_dims_make(int T, int nh, int nkv, int hd) {
    att_dims d = {T, nh, nkv, hd, (T + ATT_BQ - 1) / ATT_BQ, (int64_t)nh * hd, (int64_t)nkv * hd,
                  (float)(1.0 / sqrt((double)hd))};
    return d;
}

/* Work item i -> (head, query block). The last (most expensive, causal) blocks come first so that dynamic
 * scheduling ends with small items. */
static void att_item(const att_dims *d, int i, int *h, int *qb) {
    *qb = d->nb - 1 - i / d->nh;
    *h = i % d->nh;
}

/* S[m, kend] = scale * Q_blk K[0:kend]^T */
static void att_scores(float *S, const att_dims *d, const float *q, const float *k, int h, int q0, int m,
                       int kend) {
    int g = h / (d->nh / d->nkv);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, kend, d->hd, d->scale, q + q0 * d->qs + (int64_t)h * d->hd,
                (int)d->qs, k + (int64_t)g * d->hd, (int)d->ks, 0.0f, S, kend);
}

void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v, int T, int nh,
                       int nkv, int hd) {
    if (T <= 0 || nh <= 0) return;
    att_dims d = att_dims_make(T, nh, nkv, hd);
    int nitems = nh * d.nb, par = att_parallel(&d), saved = att_blas_single_begin(par);
#pragma omp parallel if (par)
    {
        float *S = sc_malloc(sizeof(float) * (size_t)ATT_BQ * (size_t)T);
        float inv[ATT_BQ];
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < nitems; i++) {
            int h, qb;
            att_item(&d, i, &h, &qb);
            int q0 = qb * ATT_BQ, m = T - q0 < ATT_BQ ? T - q0 : ATT_BQ, kend = q0 + m, g = h / (nh / nkv);
            att_scores(S, &d, q, k, h, q0, m, kend);
            for (int r = 0; r < m; r++) {
                float *row = S + (int64_t)r * kend;
                int n = q0 + r + 1; /* causal: keys 0..t */
                float mx = row[0], sum = 0.0f;
#pragma omp simd reduction(max : mx)
                for (int j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
#pragma omp simd reduction(+ : sum)
                for (int j = 0; j < n; j++) {
                    float e = vexp(row[j] - mx);
                    row[j] = e;
                    sum += e;
                }
                for (int j = n; j < kend; j++) row[j] = 0.0f;
                lse[(int64_t)h * T + q0 + r] = mx + logf(sum);
                inv[r] = 1.0f / sum;
            }
            /* O_blk = P V[0:kend], then normalise rows (cheaper on hd columns than on kend) */
            float *O = out + q0 * d.qs + (int64_t)h * hd;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, kend, 1.0f, S, kend, v + (int64_t)g * hd,
                        (int)d.ks, 0.0f, O, (int)d.qs);
            for (int r = 0; r < m; r++)
                for (int c = 0; c < hd; c++) O[r * d.qs + c] *= inv[r];
        }
        free(S);
    }
    att_blas_single_end(saved);
}

/* Per item: P = exp(S - lse) (0 above the diagonal), dP = dO V^T, D = rowsum(dO * O), dS = P (dP - D),
 * dQ = scale dS K, dK += scale dS^T Q, dV += P^T dO. dK/dV of a kv head receive contributions from every query
 * block and every query head of its group, so each thread accumulates into its own copy (thread 0 straight into
 * dk/dv) and the copies are added in thread order at the end: deterministic for a given thread count, because
 * items are assigned to threads statically. */
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                        const float *v, const float *out, const float *lse, int T, int nh, int nkv, int hd) {
    if (T <= 0 || nh <= 0) return;
    att_dims d = att_dims_make(T, nh, nkv, hd);
    int64_t kvn = (int64_t)T * d.ks;
    memset(dk, 0, sizeof(float) * (size_t)kvn);
    memset(dv, 0, sizeof(float) * (size_t)kvn);
    int nitems = nh * d.nb, maxt = omp_get_max_threads(), par = att_parallel(&d), saved = att_blas_single_begin(par);
    float **part = sc_calloc((size_t)maxt, sizeof(float *)); /* part[tid]: dk then dv copy of thread tid > 0 */
    int nt_used = 1;
#pragma omp parallel if (par)
    {
        int tid = omp_get_thread_num();
#pragma omp single
        nt_used = omp_get_num_threads();
        float *mydk = dk, *mydv = dv;
        if (tid > 0) {
            part[tid] = sc_calloc((size_t)(2 * kvn), sizeof(float));
            mydk = part[tid];
            mydv = part[tid] + kvn;
        }
        float *P = sc_malloc(sizeof(float) * 2 * (size_t)ATT_BQ * (size_t)T), *dS = P + (int64_t)ATT_BQ * T;
        float D[ATT_BQ];
#pragma omp for schedule(static, 1)
        for (int i = 0; i < nitems; i++) {
            int h, qb;
            att_item(&d, i, &h, &qb);
            int q0 = qb * ATT_BQ, m = T - q0 < ATT_BQ ? T - q0 : ATT_BQ, kend = q0 + m, g = h / (nh / nkv);
            int64_t qoff = q0 * d.qs + (int64_t)h * hd, koff = (int64_t)g * hd;
            att_scores(P, &d, q, k, h, q0, m, kend);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, kend, hd, 1.0f, dout + qoff, (int)d.qs, v + koff,
                        (int)d.ks, 0.0f, dS, kend);
            for (int r = 0; r < m; r++) {
                const float *dOr = dout + qoff + r * d.qs, *Or = out + qoff + r * d.qs;
                float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                for (int c = 0; c < hd; c++) acc += dOr[c] * Or[c];
                D[r] = acc;
            }
            for (int r = 0; r < m; r++) {
                float *pr = P + (int64_t)r * kend, *dsr = dS + (int64_t)r * kend, l = lse[(int64_t)h * T + q0 + r];
                float Dr = D[r];
                int n = q0 + r + 1;
#pragma omp simd
                for (int j = 0; j < n; j++) {
                    float p = vexp(pr[j] - l);
                    pr[j] = p;
                    dsr[j] = p * (dsr[j] - Dr);
                }
                for (int j = n; j < kend; j++) pr[j] = dsr[j] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, kend, d.scale, dS, kend, k + koff, (int)d.ks,
                        0.0f, dq + qoff, (int)d.qs);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kend, hd, m, d.scale, dS, kend, q + qoff, (int)d.qs,
                        1.0f, mydk + koff, (int)d.ks);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kend, hd, m, 1.0f, P, kend, dout + qoff, (int)d.qs,
                        1.0f, mydv + koff, (int)d.ks);
        }
        free(P);
    }
    att_blas_single_end(saved);
    if (nt_used > 1) {
#pragma omp parallel for schedule(static)
        for (int64_t e = 0; e < kvn; e++) {
            float a = dk[e], b = dv[e];
            for (int t = 1; t < nt_used; t++) {
                a += part[t][e];
                b += part[t][kvn + e];
            }
            dk[e] = a;
            dv[e] = b;
        }
    }
    for (int t = 1; t < maxt; t++) free(part[t]);
    free(part);
}
