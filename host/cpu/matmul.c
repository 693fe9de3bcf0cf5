/* matmul.c — the CPU linear layer: y = x W^T with W in HF [out, in] layout, and its backward. Every product goes
 * through OpenBLAS sgemm; OpenBLAS splits M and N (never K) across threads, so results are deterministic for a
 * given thread count. */
#include <cblas.h>

#include "host/cpu/ops.h"

void matmul_forward(float *y, const float *x, const float *W, int T, int in, int out) {
    if (T <= 0 || out <= 0) return;
    if (in <= 0) { /* empty sum: sgemm rejects lda = 0, and y must still be defined */
        for (long i = 0; i < (long)T * out; i++) y[i] = 0.0f;
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, in, 1.0f, x, in, W, in, 0.0f, y, out);
}

void matmul_backward(float *dx_acc, float *dW_acc, const float *dy, const float *x, const float *W, int T, int in,
                     int out) {
    if (T <= 0 || in <= 0 || out <= 0) return;
    /* dx[T,in] += dy[T,out] W[out,in] */
    if (dx_acc)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, in, out, 1.0f, dy, out, W, in, 1.0f, dx_acc, in);
    /* dW[out,in] += dy^T x: the sum over tokens is the sgemm's K dimension, so it is never split */
    if (dW_acc)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, T, 1.0f, dy, out, x, in, 1.0f, dW_acc, in);
}

void bias_forward(float *y, const float *b, int T, int out) {
    if (!b) return;
    for (long t = 0; t < T; t++) {
        float *row = y + t * out;
#pragma omp simd
        for (int i = 0; i < out; i++) row[i] += b[i];
    }
}

void bias_backward(float *db_acc, const float *dy, int T, int out) {
    if (!db_acc) return;
    for (long t = 0; t < T; t++) {
        const float *row = dy + t * out;
#pragma omp simd
        for (int i = 0; i < out; i++) db_acc[i] += row[i];
    }
}
