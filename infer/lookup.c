/* lookup.c — see lookup.h. A linear scan backwards: sequences are at most a context long (4096), the scan is
 * a few microseconds next to a forward pass, and the most recent match is the likeliest continuation in an edit. */
#include "infer/lookup.h"

#include <string.h>

int lookup_draft(const int32_t *ids, int n, int ngram, int kmax, int32_t *out) {
    if (kmax <= 0) return 0;
    for (int m = ngram < n - 1 ? ngram : n - 1; m >= 1; m--) {
        const int32_t *key = ids + n - m;
        /* a match at p: ids[p..p+m) == key, with at least one token after it before the key itself */
        for (int p = n - m - 1; p >= 0; p--) {
            if (ids[p] != key[0] || memcmp(ids + p, key, (size_t)m * sizeof(int32_t))) continue;
            int from = p + m, k = n - from < kmax ? n - from : kmax;
            memcpy(out, ids + from, (size_t)k * sizeof(int32_t));
            return k;
        }
    }
    return 0;
}
