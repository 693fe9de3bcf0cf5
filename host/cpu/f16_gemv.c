/* f16_gemv.c — the CPU twin of kernels/f16_gemv.cu (see ops.h): the decode GEMV on FP16 operands with FP32
 * accumulation, in a plain loop. */
#include <math.h>

#include "host/cpu/ops.h"
#include "host/half.h"

void f16_gemv(float *y, const uint16_t *x, const uint16_t *W, int T, int rows, int cols) {
    for (int t = 0; t < T; t++)
        for (int r = 0; r < rows; r++) {
            const uint16_t *xr = x + (int64_t)t * cols, *wr = W + (int64_t)r * cols;
            float acc = 0.0f;
            for (int c = 0; c < cols; c++) acc = fmaf(half_to_float(xr[c]), half_to_float(wr[c]), acc);
            y[(int64_t)t * rows + r] = acc;
        }
}
