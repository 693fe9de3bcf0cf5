// classifier.cuh — the chunk loop shared by the fused classifiers (classifier.cu: cross-entropy, kd_loss.cu:
// distillation): logits of `chunk` tokens at a time by cuBLAS into the FP32 workspace, a per-row kernel that turns
// each row into its FP16 gradient in place (row stride 2V halves), then dx = dlogits W and dW += scale dlogits^T x.
#ifndef SC_KERNELS_CLASSIFIER_CUH
#define SC_KERNELS_CLASSIFIER_CUH

#include "kernels/common.cuh"
#include "kernels/gemm.cuh"

// Launches the row kernel on rows [t0, t0 + n) of the step, whose FP32 logits are in buf ([n, V]); with want_dl
// it must leave row r's FP16 gradient in the first half of row r's bytes. ctx is the caller's argument block.
typedef void (*kn_classifier_rows_fn)(float *buf, int t0, int n, int V, int want_dl, const void *ctx,
                                      cudaStream_t stream);

// The classifier's weight [V, C]: FP16 (W), or INT8 (q8 != NULL: W unused, no dW) read tile by tile.
typedef struct {
    const kn_half *W;
    const kn_int8_mat *q8;
} kn_cls_weight;

// The loop of kn_classifier_forward_backward with its row kernel supplied (same arguments otherwise).
void kn_classifier_chunks(kn_blas *b, float *logits_out, kn_half *dx, float *dW_acc, float dW_scale, const kn_half *x,
                          const kn_cls_weight *w, int T, int C, int V, int chunk, void *workspace, cudaStream_t stream,
                          kn_classifier_rows_fn rows, const void *ctx);

// The end of a row kernel with want_dl, for classifier.cu and kd_loss.cu: the row's V FP32 values become the FP16
// values grad(j, row[j]), written over the first half of the same bytes. Writing element j touches the bytes of
// float j / 2, which lies in a segment every thread has finished reading: the row goes in segments of THREADS * EPT
// elements, each read into registers, then a barrier, then written. Every thread of the block (THREADS) calls it.
template <int THREADS, int EPT, typename Grad>
__device__ __forceinline__ void kn_classifier_row_to_half(float *row, int V, Grad grad) {
    __half *out = (__half *)row;
    const int tid = threadIdx.x;
    for (int base = 0; base < V; base += THREADS * EPT) {
        float vals[EPT];
#pragma unroll
        for (int e = 0; e < EPT; e++) {
            int j = base + e * THREADS + tid;
            vals[e] = j < V ? row[j] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int e = 0; e < EPT; e++) {
            int j = base + e * THREADS + tid;
            if (j < V) out[j] = f2h(grad(j, vals[e]));
        }
    }
}

#endif
