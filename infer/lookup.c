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
            /* what followed, continued periodically where it runs into the key (an overlapping copy, as in
             * LZ77): in a run like blank lines or `x, x, x` the most recent match is one period back, and a draft
             * cut at the end of the sequence proposed one token a step (33 of 64 tokens drafted, 94% accepted,
             * on spec-bench's editing workload) */
            int from = p + m;
            for (int j = 0; j < kmax; j++) out[j] = from + j < n ? ids[from + j] : out[from + j - n];
            return kmax;
        }
    }
    return 0;
}
