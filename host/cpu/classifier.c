/* classifier.c — the output layer fused with softmax cross-entropy, in chunks of 64-256 tokens so that no
 * T x V buffer exists: logits = x W^T (sgemm) -> stable log-softmax -> loss -> dlogits in place -> dx = dlogits W,
 * dW += dlogits^T x (sgemm). Losses are summed in double in token order, so the result is deterministic. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/cpu/ops.h"
#include "host/cpu/par.h"
#include "host/cpu/vexp.h"

/* Tokens per chunk: about CLS_CHUNK_VALUES logits (16 MB), between 64 and 256 rows. Every chunk streams all of W
 * through the two sgemms, so small chunks are memory-bound; huge ones spill the logits out of cache before the
 * softmax reads them. 128 rows at V = 32768 measured fastest on a 2-core Zen 5. */
enum { CLS_CHUNK_VALUES = 1 << 22, CLS_CHUNK_MIN = 64, CLS_CHUNK_MAX = 256 };

/* Softmax statistics of rows [0, n) of a logits chunk; writes losses and, when dl != NULL, the scaled gradient
 * (softmax - onehot(target)) * loss_scale. dl may equal logits (then the logits are overwritten). A target outside
 * [0, V) counts as ignored: the API has no error path, and an out-of-range id must not read out of bounds. */
static void classifier_rows(float *losses, float *dl, const float *logits, const int32_t *targets, int n, int V,
                            float loss_scale) {
#pragma omp parallel for schedule(static) if (PAR((int64_t)n * V))
    for (int r = 0; r < n; r++) {
        const float *lr = logits + (int64_t)r * V;
        int tgt = targets[r];
        int counted = tgt >= 0 && tgt < V;
        float mx = lr[0];
#pragma omp simd reduction(max : mx)
        for (int j = 1; j < V; j++) mx = lr[j] > mx ? lr[j] : mx;
        float target_logit = counted ? lr[tgt] : 0.0f; /* read before dl (maybe == logits) is written */
        /* dl != NULL: keep the exponentials there (it may be lr itself: each element is read before written) */
        double sum = vexp_sum(dl ? dl + (int64_t)r * V : NULL, lr, mx, 1.0f, V);
        if (dl) {
            float *dr = dl + (int64_t)r * V;
            if (counted) {
                float k = (float)(loss_scale / sum);
#pragma omp simd
                for (int j = 0; j < V; j++) dr[j] *= k;
                dr[tgt] -= loss_scale;
            } else {
                memset(dr, 0, sizeof(float) * (size_t)V);
            }
        }
        losses[r] = counted ? (float)((double)mx + log(sum) - (double)target_logit) : 0.0f;
    }
}

double classifier_forward_backward(float *losses, float *logits_out, float *dx, float *dW_acc, const float *x,
                                   const float *W, const int32_t *targets, int T, int C, int V, float loss_scale) {
    if (T <= 0 || V <= 0) return 0.0;
    int chunk = CLS_CHUNK_VALUES / V;
    chunk = chunk < CLS_CHUNK_MIN ? CLS_CHUNK_MIN : chunk > CLS_CHUNK_MAX ? CLS_CHUNK_MAX : chunk;
    chunk = T < chunk ? T : chunk;
    /* scratch holds the logits when the caller does not keep them, and dlogits when it does */
    float *scratch = (!logits_out || dx) ? sc_malloc(sizeof(float) * (size_t)chunk * (size_t)V) : NULL;
    double total = 0.0;
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int n = T - t0 < chunk ? T - t0 : chunk;
        const float *xc = x + (int64_t)t0 * C;
        float *logits = logits_out ? logits_out + (int64_t)t0 * V : scratch;
        float *dl = dx ? scratch : NULL;
        if (C > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, V, C, 1.0f, xc, C, W, C, 0.0f, logits, V);
        else
            memset(logits, 0, sizeof(float) * (size_t)n * (size_t)V);
        classifier_rows(losses + t0, dl, logits, targets + t0, n, V, loss_scale);
        int any = 0;
        for (int r = 0; r < n; r++) {
            total += losses[t0 + r];
            any |= targets[t0 + r] >= 0 && targets[t0 + r] < V;
        }
        if (!dx || C <= 0) continue;
        float *dxc = dx + (int64_t)t0 * C;
        if (!any) { /* all ignored: dlogits are zero, skip two sgemms */
            memset(dxc, 0, sizeof(float) * (size_t)n * (size_t)C);
            continue;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, C, V, 1.0f, dl, V, W, C, 0.0f, dxc, C);
        if (dW_acc)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, n, 1.0f, dl, V, xc, C, 1.0f, dW_acc, C);
    }
    free(scratch);
    return total;
}
