/* lora_apply.c — the CPU twin of kernels/lora_apply.cu (see ops.h): a LoRA adapter's low-rank side path on a linear
 * layer, applied without merging: y += scale * (x A^T) B^T, the r-dim product x A^T first. Up to LORA_SMALL_T rows
 * every output is one dot product in a fixed order, so row t comes out the same whatever T is (speculative
 * verification of K drafts must give the bits of K single steps, engine.h); above, two sgemms (prefill). */
#include <cblas.h>

#include "host/cpu/ops.h"
#include "host/cpu/par.h"

/* a sum whose rounding depends only on n: 8 partial sums, added in a fixed order */
static float dot_fixed8(const float *a, const float *b, int n) {
    float p[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) p[k] += a[i + k] * b[i + k];
    float s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

void lora_apply_forward(float *y, int ldy, const float *x, const float *A, const float *B, float scale, int T,
                        int rows, int cols, int r, float *h) {
    if (T <= 0 || r <= 0 || scale == 0.0f) return;
    if (T > LORA_SMALL_T) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, r, cols, 1.0f, x, cols, A, cols, 0.0f, h, r);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, rows, r, scale, h, r, B, r, 1.0f, y, ldy);
        return;
    }
#pragma omp parallel for if (PAR((int64_t)T * r * cols)) schedule(static)
    for (int j = 0; j < r; j++)
        for (int t = 0; t < T; t++) h[(int64_t)t * r + j] = dot_fixed8(x + (int64_t)t * cols, A + (int64_t)j * cols, cols);
#pragma omp parallel for if (PAR((int64_t)T * r * rows)) schedule(static)
    for (int i = 0; i < rows; i++)
        for (int t = 0; t < T; t++) {
            const float *ht = h + (int64_t)t * r, *bi = B + (int64_t)i * r;
            float acc = 0.0f;
            for (int j = 0; j < r; j++) acc += ht[j] * bi[j];
            y[(int64_t)t * ldy + i] += scale * acc;
        }
}
