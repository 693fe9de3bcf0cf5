/* decode_attention.c — the CPU twin of kernels/decode_attention.cu's attention (see ops.h): new query rows over a
 * KV cache, one row and head at a time (scores, max, exp, sum, weighted values), FP32. */
#include <math.h>
#include <stdlib.h>

#include "host/cpu/ops.h"
#include "host/error.h"

void decode_attention(float *out, const float *q, const float *k, const float *v, int T, int pos, int nh, int nkv,
                      int hd) {
    int row = nkv * hd, group = nh / nkv;
    float scale = 1.0f / sqrtf((float)hd), *p = sc_malloc(sizeof(float) * (size_t)(pos + T));
    for (int t = 0; t < T; t++)
        for (int h = 0; h < nh; h++) {
            const float *qr = q + (int64_t)t * nh * hd + (int64_t)h * hd;
            const float *K = k + (int64_t)(h / group) * hd, *V = v + (int64_t)(h / group) * hd;
            int n = pos + t + 1;
            float mx = -INFINITY, sum = 0.0f;
            for (int j = 0; j < n; j++) {
                float s = 0.0f;
                for (int d = 0; d < hd; d++) s = fmaf(qr[d], K[(int64_t)j * row + d], s);
                p[j] = s * scale;
                mx = fmaxf(mx, p[j]);
            }
            for (int j = 0; j < n; j++) sum += p[j] = expf(p[j] - mx);
            float *o = out + (int64_t)t * nh * hd + (int64_t)h * hd;
            for (int d = 0; d < hd; d++) {
                float acc = 0.0f;
                for (int j = 0; j < n; j++) acc = fmaf(p[j], V[(int64_t)j * row + d], acc);
                o[d] = acc / sum;
            }
        }
    free(p);
}
