/* threads.c — see threads.h. */
#include "host/threads.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

int sc_set_threads(int n) {
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}

static uint64_t span_of(uint32_t front, uint32_t end) { return (uint64_t)end << 32 | front; }

void sc_split_init(sc_split *s, int n, int nthreads) {
    int ns = nthreads < 1 ? 1 : nthreads > SC_SPLIT_MAX ? SC_SPLIT_MAX : nthreads;
    s->nseg = ns;
    for (int i = 0; i < ns; i++) {
        uint32_t a = (uint32_t)((int64_t)n * i / ns), b = (uint32_t)((int64_t)n * (i + 1) / ns);
        atomic_store_explicit(&s->seg[i].span, span_of(a, b), memory_order_relaxed);
    }
}

/* takes the front (own segment) or the back (another's) item of segment i; -1 when it is empty. Relaxed order is
 * enough: the compare-exchange only hands out indices, and the region's closing barrier publishes the results. */
static int split_take(sc_split *s, int i, int back) {
    uint64_t v = atomic_load_explicit(&s->seg[i].span, memory_order_relaxed);
    for (;;) {
        uint32_t front = (uint32_t)v, end = (uint32_t)(v >> 32);
        if (front >= end) return -1;
        uint64_t next = back ? span_of(front, end - 1) : span_of(front + 1, end);
        if (atomic_compare_exchange_weak_explicit(&s->seg[i].span, &v, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return (int)(back ? end - 1 : front);
    }
}

int sc_split_next(sc_split *s, int t) {
    int ns = s->nseg, item;
    if (t < ns && (item = split_take(s, t, 0)) >= 0) return item;
    for (int k = 1; k <= ns; k++) /* the next segments first, so two idle threads rarely pick the same victim */
        if ((item = split_take(s, (t + k) % ns, 1)) >= 0) return item;
    return -1;
}
