/* embedding.c — token embedding lookup and its backward (scatter-add into the table). The backward gives each
 * thread a block of columns and walks the tokens in order inside it, so the sum for a repeated id is always taken
 * in token order: bit-identical results for any thread count, no atomics. */
#include <string.h>

#include "host/cpu/ops.h"
#include "host/cpu/par.h"

void embedding_forward(float *out, const int32_t *ids, const float *table, int T, int C) {
#pragma omp parallel for schedule(static) if (PAR((int64_t)T * C))
    for (int t = 0; t < T; t++) memcpy(out + (int64_t)t * C, table + (int64_t)ids[t] * C, sizeof(float) * (size_t)C);
}

enum { EMB_COLS = 64 }; /* columns per work item: a cache line multiple, and enough items for any thread count */

void embedding_backward(float *dtable_acc, const float *dout, const int32_t *ids, int T, int C) {
    int nblocks = (C + EMB_COLS - 1) / EMB_COLS;
#pragma omp parallel for schedule(static) if (PAR((int64_t)T * C))
    for (int b = 0; b < nblocks; b++) {
        int c0 = b * EMB_COLS, c1 = c0 + EMB_COLS < C ? c0 + EMB_COLS : C;
        for (int t = 0; t < T; t++) {
            float *dst = dtable_acc + (int64_t)ids[t] * C;
            const float *src = dout + (int64_t)t * C;
            for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}
