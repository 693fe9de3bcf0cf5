/* batch.c — helpers shared by every batch source (see batch.h). */
#include "train/batch.h"

int64_t batch_split(const int32_t *windows, int n, int T, int32_t ignore_id, int32_t *ids, int32_t *targets) {
    int64_t counted = 0;
    for (int i = 0; i < n; i++) {
        const int32_t *w = windows + (int64_t)i * (T + 1);
        int32_t *id = ids + (int64_t)i * T, *tg = targets + (int64_t)i * T;
        for (int t = 0; t < T; t++) {
            id[t] = w[t];
            tg[t] = (ignore_id >= 0 && w[t + 1] == ignore_id) ? -1 : w[t + 1];
            counted += tg[t] >= 0;
        }
    }
    return counted;
}
