// classifier.cu — the output layer fused with softmax cross-entropy (host/cpu/classifier.c is the twin), chunk by
// chunk so that no T x V buffer exists: cuBLAS writes a chunk of FP32 logits, one block per row finds max, sum and
// the loss, then overwrites the row in place with its FP16 gradient, and two more GEMMs take dx and dW from it. A
// frozen INT8 weight (the LoRA base's lm_head) is read through one dequantized tile at a time.
#include "kernels/common.cuh"
#include "kernels/classifier.cuh"

enum { CLS_THREADS = 512, CLS_EPT = 8 };

// Row r of the chunk holds V floats at logits + r V. Its FP16 gradient is written over the first half of the same
// bytes (so dlogits is an FP16 matrix with row stride 2V), segment by segment (kn_classifier_row_to_half).
__global__ void __launch_bounds__(CLS_THREADS)
    classifier_rows_kernel(float *logits, float *losses, const int32_t *targets, int V, float loss_scale,
                           int want_dl) {
    int row = blockIdx.x, tid = threadIdx.x;
    float *lr = logits + (int64_t)row * V;
    float mx = -INFINITY;
    for (int j = tid; j < V; j += CLS_THREADS) mx = fmaxf(mx, lr[j]);
    mx = block_max(mx);
    float sum = 0.0f;
    for (int j = tid; j < V; j += CLS_THREADS) sum += expf(lr[j] - mx);
    sum = block_sum(sum);
    int tgt = targets[row];
    int counted = tgt >= 0 && tgt < V;
    // read before the first write below: every write comes after a barrier this thread reaches later
    if (tid == 0) losses[row] = counted ? (mx + logf(sum)) - lr[tgt] : 0.0f;
    if (!want_dl) return;
    float k = loss_scale / sum;
    kn_classifier_row_to_half<CLS_THREADS, CLS_EPT>(lr, V, [=](int j, float v) {
        return counted ? expf(v - mx) * k - (j == tgt ? loss_scale : 0.0f) : 0.0f;
    });
}

// logits^T[V, n] = W[V, C] x_c^T into buf (FP32, row stride V): an INT8 W one tile of vocabulary rows at a time
static void logits_gemm(kn_blas *b, float *buf, const kn_half *xc, const kn_cls_weight *w, int n, int C, int V,
                        cudaStream_t stream) {
    const kn_int8_mat *q = w->q8;
    if (!q) {
        kn_gemm(b, CUBLAS_OP_T, CUBLAS_OP_N, V, n, C, 1.0f, w->W, C, xc, C, 0.0f, buf, 1, V);
        return;
    }
    int rows = (int)(q->tile / C);
    for (int v0 = 0; v0 < V; v0 += rows) {
        int nv = V - v0 < rows ? V - v0 : rows;
        kn_int8_dequant_tile(q->scratch, q->q, q->scale, C, q->group, v0, nv, 0, C, stream);
        kn_gemm(b, CUBLAS_OP_T, CUBLAS_OP_N, nv, n, C, 1.0f, q->scratch, C, xc, C, 0.0f, buf + v0, 1, V);
    }
}

// dx_c^T[C, n] = W^T[C, V] dl^T[V, n]: an INT8 W one tile of columns at a time (each GEMM sums over all of V)
static void dx_gemm(kn_blas *b, kn_half *dxc, const __half *dl, const kn_cls_weight *w, int n, int C, int V,
                    cudaStream_t stream) {
    const kn_int8_mat *q = w->q8;
    if (!q) {
        kn_gemm(b, CUBLAS_OP_N, CUBLAS_OP_N, C, n, V, 1.0f, w->W, C, dl, 2 * V, 0.0f, dxc, 0, C);
        return;
    }
    int cols = (int)(q->tile / V);
    for (int c0 = 0; c0 < C; c0 += cols) {
        int nc = C - c0 < cols ? C - c0 : cols;
        kn_int8_dequant_tile(q->scratch, q->q, q->scale, C, q->group, 0, V, c0, nc, stream);
        kn_gemm(b, CUBLAS_OP_N, CUBLAS_OP_N, nc, n, V, 1.0f, q->scratch, nc, dl, 2 * V, 0.0f, dxc + c0, 0, C);
    }
}

void kn_classifier_chunks(kn_blas *b, float *logits_out, kn_half *dx, float *dW_acc, float dW_scale, const kn_half *x,
                          const kn_cls_weight *w, int T, int C, int V, int chunk, void *workspace, cudaStream_t stream,
                          kn_classifier_rows_fn rows, const void *ctx) {
    if (T <= 0 || V <= 0) return;
    if (chunk <= 0) chunk = T;
    if (stream != b->stream) {  // GEMMs and kernels must be ordered on one stream
        KN_CUBLAS(cublasSetStream(b->handle, stream));
        b->stream = stream;
    }
    float *buf = (float *)workspace;
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int n = T - t0 < chunk ? T - t0 : chunk;
        const kn_half *xc = x + (int64_t)t0 * C;
        logits_gemm(b, buf, xc, w, n, C, V, stream);
        if (logits_out)
            KN_CHECK(cudaMemcpyAsync(logits_out + (int64_t)t0 * V, buf, sizeof(float) * (size_t)n * (size_t)V,
                                     cudaMemcpyDeviceToDevice, stream));
        rows(buf, t0, n, V, dx != NULL, ctx, stream);
        if (!dx || C <= 0) continue;
        const __half *dl = (const __half *)buf;  // FP16, row stride 2V
        dx_gemm(b, dx + (int64_t)t0 * C, dl, w, n, C, V, stream);
        // dW^T[C, V] += x_c^T[C, n] dl[n, V] (an INT8 weight is frozen: no dW)
        if (dW_acc && !w->q8)
            kn_gemm(b, CUBLAS_OP_N, CUBLAS_OP_T, C, V, n, dW_scale, xc, C, dl, 2 * V, 1.0f, dW_acc, 1, C);
    }
}

typedef struct {
    float *losses;
    const int32_t *targets;
    float loss_scale;
} cls_rows_args;

static void classifier_rows(float *buf, int t0, int n, int V, int want_dl, const void *ctx, cudaStream_t stream) {
    const cls_rows_args *a = (const cls_rows_args *)ctx;
    classifier_rows_kernel<<<n, CLS_THREADS, 0, stream>>>(buf, a->losses + t0, a->targets + t0, V, a->loss_scale,
                                                          want_dl);
    KN_CHECK_LAUNCH();
}

extern "C" void kn_classifier_forward_backward(kn_blas *b, float *losses, float *logits_out, kn_half *dx,
                                               float *dW_acc, float dW_scale, const kn_half *x, const kn_half *W,
                                               const int32_t *targets, int T, int C, int V, float loss_scale,
                                               int chunk, void *workspace, cudaStream_t stream) {
    cls_rows_args a = {losses, targets, loss_scale};
    kn_cls_weight w = {W, NULL};
    kn_classifier_chunks(b, logits_out, dx, dW_acc, dW_scale, x, &w, T, C, V, chunk, workspace, stream,
                         classifier_rows, &a);
}

extern "C" void kn_classifier_forward_backward_q8(kn_blas *b, float *losses, float *logits_out, kn_half *dx,
                                                  const kn_half *x, const kn_int8_mat *W, const int32_t *targets,
                                                  int T, int C, int V, float loss_scale, int chunk, void *workspace,
                                                  cudaStream_t stream) {
    cls_rows_args a = {losses, targets, loss_scale};
    kn_cls_weight w = {NULL, W};
    kn_classifier_chunks(b, logits_out, dx, NULL, 0.0f, x, &w, T, C, V, chunk, workspace, stream, classifier_rows, &a);
}
