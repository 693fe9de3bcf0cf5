// kd_loss.cu — the output layer fused with the distillation loss (host/cpu/kd_loss.c is the twin, kd_row its
// per-row math): the chunk loop of classifier.cuh with a row kernel that computes alpha T^2 KL(teacher_T ||
// student_T) (or the reverse KL) over the teacher's top-k + one tail bucket, plus (1 - alpha) cross-entropy.
//
// One block per row. The student's sums are FP32 block reductions over the row; the k + 1 bucket statistics are
// in double like the twin's (k of them per row, cheap next to V). The tail sum is taken over the row with the
// teacher's k entries overwritten by -inf (read into shared memory first), so it is a sum of the tail itself, not
// a difference that cancels when the top-k hold nearly all the mass. Gradient with respect to u = z/T (s = the
// student's softmax at T, p = the teacher's bucket probabilities, q = the student's), as in kd_loss.c:
//   forward KL: s_j - p_j (top-k j), s_j - p_tail e_j / S_tail (tail j);  reverse: s_j (log q_b - log p_b - KL)
// times alpha T^2 / T, plus (1 - alpha)(softmax - onehot); all times loss_scale.
#include "kernels/classifier.cuh"
#include "kernels/common.cuh"

enum { KD_THREADS = 512, KD_EPT = 8 };

typedef struct {
    float *losses, *ce;
    const int32_t *targets, *ids;
    const __half *tlogits;
    const float *tlse;
    int k, reverse;
    float alpha, temperature, loss_scale;
} kd_rows_args;

__device__ __forceinline__ double kd_block_max_d(double v) {
    __shared__ double part[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (lane == 0) part[w] = v;
    __syncthreads();
    double r = part[0];
    for (int i = 1; i < nw; i++) r = fmax(r, part[i]);
    __syncthreads();
    return r;
}

// Row `row` of the chunk (position t0 + row) in logits[row V ..]: writes losses/ce and, with want_dl, the FP16
// gradient over the first half of the row's bytes (kn_classifier_row_to_half, as classifier_rows_kernel).
__global__ void __launch_bounds__(KD_THREADS)
    kd_rows_kernel(float *logits, kd_rows_args a, int t0, int V, int want_dl) {
    __shared__ float ztop[KN_KD_MAX_TOPK];       // the student's logits at the teacher's ids
    __shared__ double bp[KN_KD_MAX_TOPK + 1];    // per bucket: teacher log-weight, then p_b
    __shared__ double bg[KN_KD_MAX_TOPK + 1];    // per bucket: log q_b - log p_b, then the top-k KD gradient
    __shared__ float ztgt;
    const int row = blockIdx.x, tid = threadIdx.x, t = t0 + row, k = a.k;
    float *lr = logits + (int64_t)row * V;
    __half *dl = (__half *)lr;
    const int tgt = a.targets[t];
    if (tgt < 0 || tgt >= V) {  // ignored position: loss 0, gradient 0
        // no data is shared, but every block reaches a barrier: the emulator (tests/gpu/emu) runs a launch whose
        // first block has none without fibers, and would then refuse the barriers of the counted rows
        __syncthreads();
        if (tid == 0) {
            a.losses[t] = 0.0f;
            if (a.ce) a.ce[t] = 0.0f;
        }
        if (want_dl)
            for (int j = tid; j < V; j += KD_THREADS) dl[j] = f2h(0.0f);
        return;
    }
    const int32_t *ids = a.ids + (int64_t)t * k;
    const __half *ta = a.tlogits + (int64_t)t * k;
    const double tl = (double)a.tlse[t];
    for (int i = tid; i < k; i += KD_THREADS) ztop[i] = lr[ids[i]];
    if (tid == 0) ztgt = lr[tgt];
    float mx = -INFINITY;
    for (int j = tid; j < V; j += KD_THREADS) mx = fmaxf(mx, lr[j]);
    mx = block_max(mx);
    float s1 = 0.0f;
    for (int j = tid; j < V; j += KD_THREADS) s1 += expf(lr[j] - mx);
    const float sum1 = block_sum(s1);  // its barriers: every read of the full row is done
    for (int i = tid; i < k; i += KD_THREADS) lr[ids[i]] = -INFINITY;
    __syncthreads();
    const float invT = 1.0f / a.temperature;
    const int has_tail = k < V, nb = k + has_tail;
    float st = 0.0f, sk = 0.0f;
    for (int j = tid; j < V; j += KD_THREADS) st += expf((lr[j] - mx) * invT);
    for (int i = tid; i < k; i += KD_THREADS) sk += expf((ztop[i] - mx) * invT);
    double stail = (double)block_sum(st);
    const double ZT = stail + (double)block_sum(sk), logZT = log(ZT);
    if (stail < 1e-300) stail = 1e-300;
    // teacher buckets at T in log space (the twin's formulas; tail logits taken as equal when T != 1)
    double pt = 0.0;
    for (int i = tid; i < k; i += KD_THREADS) pt += exp((double)h2f(ta[i]) - tl);
    const double ptop = block_sum_d(pt);
    double m = -INFINITY;
    for (int b = tid; b < nb; b += KD_THREADS) {
        double lw;
        if (b < k) {
            lw = (double)h2f(ta[b]) * invT;
        } else {
            double ptail1 = 1.0 - ptop;
            if (ptail1 < 1e-8) ptail1 = 1e-8;
            double at = tl + log(ptail1 / (double)(V - k));  // each tail id's logit, uniform spread
            lw = log((double)(V - k)) + at * invT;
        }
        bp[b] = lw;
        m = fmax(m, lw);
    }
    m = kd_block_max_d(m);
    double zs = 0.0;
    for (int b = tid; b < nb; b += KD_THREADS) zs += exp(bp[b] - m);
    const double lzs = log(block_sum_d(zs));
    double klp = 0.0;
    for (int b = tid; b < nb; b += KD_THREADS) {
        double lp = bp[b] - m - lzs;
        double lq = b < k ? (double)(ztop[b] - mx) * invT - logZT : log(stail) - logZT;
        double p = exp(lp), g = lq - lp;
        bp[b] = p, bg[b] = g;
        klp += a.reverse ? exp(lq) * g : -p * g;
    }
    const double kl = block_sum_d(klp);  // its barriers also publish bp/bg to the whole block
    const double alpha = (double)a.alpha, T2 = (double)a.temperature * a.temperature;
    if (tid == 0) {
        double ce = (double)mx + log((double)sum1) - (double)ztgt;
        a.losses[t] = (float)(alpha * T2 * kl + (1.0 - alpha) * ce);
        if (a.ce) a.ce[t] = (float)ce;
    }
    if (!want_dl) return;
    const double kdw = alpha * T2 * a.loss_scale, cew = (1.0 - alpha) * a.loss_scale;
    float ct = 0.0f;
    if (has_tail) ct = (float)(kdw * invT * (a.reverse ? (bg[k] - kl) / ZT : 1.0 / ZT - bp[k] / stail));
    const float c = (float)(cew / sum1), cewf = (float)cew;
    // the teacher's ids hold -inf here (both terms 0); they are written after this
    kn_classifier_row_to_half<KD_THREADS, KD_EPT>(lr, V, [=](int j, float v) {
        return ct * expf((v - mx) * invT) + c * expf(v - mx) - (j == tgt ? cewf : 0.0f);
    });
    __syncthreads();  // every write of the loop is done before the top-k entries are overwritten
    for (int i = tid; i < k; i += KD_THREADS) {
        double s = (double)expf((ztop[i] - mx) * invT) / ZT;
        float g = (float)(kdw * invT * (a.reverse ? s * (bg[i] - kl) : s - bp[i]));
        g += c * expf(ztop[i] - mx) - (ids[i] == tgt ? cewf : 0.0f);
        dl[ids[i]] = f2h(g);
    }
}

static void kd_rows(float *buf, int t0, int n, int V, int want_dl, const void *ctx, cudaStream_t stream) {
    kd_rows_kernel<<<n, KD_THREADS, 0, stream>>>(buf, *(const kd_rows_args *)ctx, t0, V, want_dl);
    KN_CHECK_LAUNCH();
}

static int kd_classifier(kn_blas *b, float *losses, float *ce, kn_half *dx, float *dW_acc, float dW_scale,
                         const kn_half *x, const kn_cls_weight *w, const int32_t *targets, const int32_t *kd_ids,
                         const kn_half *kd_logits, const float *kd_lse, int k, float alpha, float temperature,
                         int reverse, int T, int C, int V, float loss_scale, int chunk, void *workspace,
                         cudaStream_t stream) {
    if (k < 1 || k > KN_KD_MAX_TOPK || k > V)
        return kn_fail("kd classifier: top-k %d must be in [1, min(vocab %d, %d)]", k, V, KN_KD_MAX_TOPK);
    if (!(temperature > 0.0f)) return kn_fail("kd classifier: temperature %g must be positive", (double)temperature);
    kd_rows_args a = {losses, ce, targets, kd_ids, (const __half *)kd_logits, kd_lse, k, reverse != 0,
                      alpha, temperature, loss_scale};
    kn_classifier_chunks(b, NULL, dx, dW_acc, dW_scale, x, w, T, C, V, chunk, workspace, stream, kd_rows, &a);
    return 0;
}

extern "C" int kn_kd_classifier_forward_backward(kn_blas *b, float *losses, float *ce, kn_half *dx, float *dW_acc,
                                                 float dW_scale, const kn_half *x, const kn_half *W,
                                                 const int32_t *targets, const int32_t *kd_ids,
                                                 const kn_half *kd_logits, const float *kd_lse, int k, float alpha,
                                                 float temperature, int reverse, int T, int C, int V,
                                                 float loss_scale, int chunk, void *workspace, cudaStream_t stream) {
    kn_cls_weight w = {W, NULL};
    return kd_classifier(b, losses, ce, dx, dW_acc, dW_scale, x, &w, targets, kd_ids, kd_logits, kd_lse, k, alpha,
                         temperature, reverse, T, C, V, loss_scale, chunk, workspace, stream);
}

extern "C" int kn_kd_classifier_forward_backward_q8(kn_blas *b, float *losses, float *ce, kn_half *dx,
                                                    const kn_half *x, const kn_int8_mat *W, const int32_t *targets,
                                                    const int32_t *kd_ids, const kn_half *kd_logits,
                                                    const float *kd_lse, int k, float alpha, float temperature,
                                                    int reverse, int T, int C, int V, float loss_scale, int chunk,
                                                    void *workspace, cudaStream_t stream) {
    kn_cls_weight w = {NULL, W};
    return kd_classifier(b, losses, ce, dx, NULL, 0.0f, x, &w, targets, kd_ids, kd_logits, kd_lse, k, alpha,
                         temperature, reverse, T, C, V, loss_scale, chunk, workspace, stream);
}
