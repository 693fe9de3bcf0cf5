/* attention.c — causal GQA attention (scale 1/sqrt(hd)), FlashAttention-style on the CPU. The work is cut into
 * (kv head, block of query rows) items. An item stacks the block's rows of every query head that reads this kv
 * head into one matrix (GQA: the heads share K and V, so one sgemm serves them all), computes the scores against
 * keys [0, end of block), masks only the diagonal part, and never holds more than (rows x T) scores. The backward
 * recomputes the probabilities from the saved logsumexp. Items run in parallel (OpenMP), each calling a
 * single-threaded sgemm. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/cpu/ops.h"
#include "host/cpu/par.h"
#include "host/cpu/vexp.h"

/* Stacked rows per item (query rows per block x query heads per kv head), and the fewest query rows per block.
 * 128 x T scores stay in L2 up to T = 2048; fewer rows per block waste less on the masked diagonal. */
enum { ATT_ROWS = 128, ATT_MIN_BQ = 16 };

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
    int T, nh, nkv, hd, grp; /* grp = query heads per kv head */
    int bq, nb;              /* query rows per block, number of blocks */
    int64_t qs, ks;          /* row strides of q/out and of k/v */
    float scale;
    int parallel;
} att_dims;

static att_dims att_dims_make(int T, int nh, int nkv, int hd) {
    att_dims d = {.T = T, .nh = nh, .nkv = nkv, .hd = hd, .grp = nh / nkv};
    d.bq = ATT_ROWS / d.grp < ATT_MIN_BQ ? ATT_MIN_BQ : ATT_ROWS / d.grp;
    d.nb = (T + d.bq - 1) / d.bq;
    d.qs = (int64_t)nh * hd, d.ks = (int64_t)nkv * hd;
    d.scale = (float)(1.0 / sqrt((double)hd));
    /* multiply-adds of the causal products: small problems stay on the calling thread */
    d.parallel = PAR((int64_t)T * (T + 1) / 2 * nh * hd);
    return d;
}

/* One item: kv head g, query rows [q0, q0 + m); its stacked matrices have M = grp * m rows, row i = (head
 * g * grp + i / m, token q0 + i % m). Last (most expensive, causal) blocks come first so that dynamic scheduling
 * ends with small items. */
typedef struct {
    int g, q0, m, kend, M;
} att_item;

static att_item att_item_get(const att_dims *d, int i) {
    att_item it;
    int qb = d->nb - 1 - i / d->nkv;
    it.g = i % d->nkv;
    it.q0 = qb * d->bq;
    it.m = d->T - it.q0 < d->bq ? d->T - it.q0 : d->bq;
    it.kend = it.q0 + it.m;
    it.M = d->grp * it.m;
    return it;
}

/* dst[M, hd] = the item's rows of src (q, out, dout: [T, nh * hd]) */
static void att_gather(float *dst, const float *src, const att_dims *d, const att_item *it) {
    for (int i = 0; i < it->M; i++) {
        int h = it->g * d->grp + i / it->m, t = it->q0 + i % it->m;
        memcpy(dst + (int64_t)i * d->hd, src + t * d->qs + (int64_t)h * d->hd, sizeof(float) * (size_t)d->hd);
    }
}

/* S[M, kend] = scale * Qs K[0:kend]^T */
static void att_scores(float *S, const float *Qs, const float *k, const att_dims *d, const att_item *it) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, it->M, it->kend, d->hd, d->scale, Qs, d->hd,
                k + (int64_t)it->g * d->hd, (int)d->ks, 0.0f, S, it->kend);
}

void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v, int T, int nh,
                       int nkv, int hd) {
    if (T <= 0 || nh <= 0) return;
    att_dims d = att_dims_make(T, nh, nkv, hd);
    int nitems = nkv * d.nb, saved = att_blas_single_begin(d.parallel);
    int64_t rows = (int64_t)d.grp * d.bq;
#pragma omp parallel if (d.parallel)
    {
        float *S = sc_malloc(sizeof(float) * (size_t)(rows * T + 2 * rows * hd + rows));
        float *Qs = S + rows * T, *Os = Qs + rows * hd, *inv = Os + rows * hd;
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < nitems; i++) {
            att_item it = att_item_get(&d, i);
            att_gather(Qs, q, &d, &it);
            att_scores(S, Qs, k, &d, &it);
            for (int r = 0; r < it.M; r++) {
                float *row = S + (int64_t)r * it.kend;
                int h = it.g * d.grp + r / it.m, t = it.q0 + r % it.m, n = t + 1; /* causal: keys 0..t */
                float mx = row[0], sum = 0.0f;
#pragma omp simd reduction(max : mx)
                for (int j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
#pragma omp simd reduction(+ : sum)
                for (int j = 0; j < n; j++) {
                    float e = vexp(row[j] - mx);
                    row[j] = e;
                    sum += e;
                }
                for (int j = n; j < it.kend; j++) row[j] = 0.0f;
                lse[(int64_t)h * T + t] = mx + logf(sum);
                inv[r] = 1.0f / sum;
            }
            /* Os = P V[0:kend]; rows are normalised on the way out (hd columns instead of kend) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, it.M, hd, it.kend, 1.0f, S, it.kend,
                        v + (int64_t)it.g * hd, (int)d.ks, 0.0f, Os, hd);
            for (int r = 0; r < it.M; r++) {
                int h = it.g * d.grp + r / it.m, t = it.q0 + r % it.m;
                float *o = out + t * d.qs + (int64_t)h * hd;
                const float *src = Os + (int64_t)r * hd;
                float w = inv[r];
#pragma omp simd
                for (int c = 0; c < hd; c++) o[c] = src[c] * w;
            }
        }
        free(S);
    }
    att_blas_single_end(saved);
}

/* Per item: P = exp(S - lse) (0 above the diagonal), dP = dO V^T, D = rowsum(dO * O), dS = P (dP - D),
 * dQ = scale dS K, dK += scale dS^T Q, dV += P^T dO. dK/dV of a kv head receive contributions from every query
 * block, so each thread accumulates into its own copy (thread 0 straight into dk/dv) and the copies are added in
 * thread order at the end: deterministic for a given thread count, because items are assigned to threads
 * statically. */
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                        const float *v, const float *out, const float *lse, int T, int nh, int nkv, int hd) {
    if (T <= 0 || nh <= 0) return;
    att_dims d = att_dims_make(T, nh, nkv, hd);
    int64_t kvn = (int64_t)T * d.ks, rows = (int64_t)d.grp * d.bq;
    memset(dk, 0, sizeof(float) * (size_t)kvn);
    memset(dv, 0, sizeof(float) * (size_t)kvn);
    int nitems = nkv * d.nb, maxt = omp_get_max_threads(), saved = att_blas_single_begin(d.parallel);
    float **part = sc_calloc((size_t)maxt, sizeof(float *)); /* part[tid]: dk then dv copy of thread tid > 0 */
    int nt_used = 1;
#pragma omp parallel if (d.parallel)
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
        float *P = sc_malloc(sizeof(float) * (size_t)(2 * rows * T + 3 * rows * hd + rows));
        float *dS = P + rows * T, *Qs = dS + rows * T, *dOs = Qs + rows * hd, *dQs = dOs + rows * hd;
        float *D = dQs + rows * hd;
#pragma omp for schedule(static, 1)
        for (int i = 0; i < nitems; i++) {
            att_item it = att_item_get(&d, i);
            int64_t koff = (int64_t)it.g * hd;
            att_gather(Qs, q, &d, &it);
            att_gather(dOs, dout, &d, &it);
            att_scores(P, Qs, k, &d, &it);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, it.M, it.kend, hd, 1.0f, dOs, hd, v + koff, (int)d.ks,
                        0.0f, dS, it.kend);
            for (int r = 0; r < it.M; r++) {
                int h = it.g * d.grp + r / it.m, t = it.q0 + r % it.m, n = t + 1;
                const float *dOr = dOs + (int64_t)r * hd, *Or = out + t * d.qs + (int64_t)h * hd;
                float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                for (int c = 0; c < hd; c++) acc += dOr[c] * Or[c];
                D[r] = acc;
                float *pr = P + (int64_t)r * it.kend, *dsr = dS + (int64_t)r * it.kend, l = lse[(int64_t)h * T + t];
#pragma omp simd
                for (int j = 0; j < n; j++) {
                    float p = vexp(pr[j] - l);
                    pr[j] = p;
                    dsr[j] = p * (dsr[j] - acc);
                }
                for (int j = n; j < it.kend; j++) pr[j] = dsr[j] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, it.M, hd, it.kend, d.scale, dS, it.kend, k + koff,
                        (int)d.ks, 0.0f, dQs, hd);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, it.kend, hd, it.M, d.scale, dS, it.kend, Qs, hd, 1.0f,
                        mydk + koff, (int)d.ks);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, it.kend, hd, it.M, 1.0f, P, it.kend, dOs, hd, 1.0f,
                        mydv + koff, (int)d.ks);
            for (int r = 0; r < it.M; r++) {
                int h = it.g * d.grp + r / it.m, t = it.q0 + r % it.m;
                memcpy(dq + t * d.qs + (int64_t)h * hd, dQs + (int64_t)r * hd, sizeof(float) * (size_t)hd);
            }
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
