/* int8_gemv.c — the CPU twin of kernels/int8_gemv.cu (see ops.h): per-token activation quantization and the W8A8
 * product in plain loops, with the kernel's float expressions, so the kernel's integers can be checked exactly. */
#include <math.h>

#include "host/cpu/ops.h"
#include "host/half.h"

static int group_of(int cols, int group) { return group <= 0 || group > cols ? cols : group; }

void int8_act_quant(int8_t *xq, float *xs, const float *x, int T, int cols, int group) {
    int G = group_of(cols, group), ng = (cols + G - 1) / G;
    for (int t = 0; t < T; t++) {
        const float *xr = x + (int64_t)t * cols;
        for (int g = 0; g < ng; g++) {
            int c0 = g * G, c1 = c0 + G < cols ? c0 + G : cols;
            float amax = 0.0f;
            for (int c = c0; c < c1; c++) amax = fmaxf(amax, fabsf(xr[c]));
            float s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
            xs[(int64_t)t * ng + g] = s;
            for (int c = c0; c < c1; c++) xq[(int64_t)t * cols + c] = (int8_t)(int)rintf(xr[c] * inv);
        }
    }
}

void int8_gemv(float *y, const int8_t *xq, const float *xs, const int8_t *W, const uint16_t *scale, int T, int rows,
               int cols, int group) {
    int G = group_of(cols, group), ng = (cols + G - 1) / G;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < rows; r++) {
            const int8_t *wr = W + (int64_t)r * cols, *xr = xq + (int64_t)t * cols;
            float acc = 0.0f;
            for (int g = 0; g < ng; g++) {
                int c0 = g * G, c1 = c0 + G < cols ? c0 + G : cols;
                int32_t p = 0;
                for (int c = c0; c < c1; c++) p += (int32_t)wr[c] * xr[c];
                acc += half_to_float(scale[(int64_t)r * ng + g]) * xs[(int64_t)t * ng + g] * (float)p;
            }
            y[(int64_t)t * rows + r] = acc;
        }
}

void int8_dequant_tile(uint16_t *out, const int8_t *W, const uint16_t *scale, int cols, int group, int64_t r0, int nr,
                       int c0, int nc) {
    int G = group_of(cols, group), ng = (cols + G - 1) / G;
    for (int64_t i = 0; i < nr; i++)
        for (int j = 0; j < nc; j++) {
            int64_t r = r0 + i;
            int c = c0 + j;
            out[i * nc + j] = float_to_half((float)W[r * cols + c] * half_to_float(scale[r * ng + c / G]));
        }
}
