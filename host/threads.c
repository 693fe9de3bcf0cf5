/* threads.c — see threads.h. */
#include "host/threads.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <unistd.h>

int sc_set_threads(int n) {
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}

void sc_split_init(sc_split *s, int n, int nseg) {
    int ns = nseg < 1 ? 1 : nseg > SC_SPLIT_MAX ? SC_SPLIT_MAX : nseg;
    s->nseg = ns;
    for (int i = 0; i < ns; i++) {
        atomic_store_explicit(&s->seg[i].next, (int)((int64_t)n * i / ns), memory_order_relaxed);
        s->seg[i].end = (int)((int64_t)n * (i + 1) / ns);
    }
}

/* Owner and thieves take from the front of a segment: a thread that takes over a preempted thread's run reads
 * it front to back too, one linear stream. Relaxed order is enough: the fetch-add only hands out indices, and the
 * region's closing barrier publishes the results. A segment's counter passes its end by at most one per thread
 * and pass; the end bounds every item. */
int sc_split_next(sc_split *s, int t) {
    int ns = s->nseg;
    for (int k = 0; k < ns; k++) { /* own segment first (t < ns), then the following ones */
        int i = (t + k) % ns;
        if (atomic_load_explicit(&s->seg[i].next, memory_order_relaxed) >= s->seg[i].end) continue;
        int item = atomic_fetch_add_explicit(&s->seg[i].next, 1, memory_order_relaxed);
        if (item < s->seg[i].end) return item;
    }
    return -1;
}

/* read before main(), so no thread sees it change (tests excepted) */
static int split_env = 1, split_forced = -1;
__attribute__((constructor)) static void split_pick(void) {
    const char *v = getenv("SMALLCODER_DECODE_SPLIT");
    if (!v || !*v || strcmp(v, "runs") == 0) return;
    if (strcmp(v, "queue") == 0) split_env = 0;
    else if (!getenv("SMALLCODER_TUNED")) /* once: not again in the process cpu_tune.c re-executes */
        fprintf(stderr, "smallcoder: SMALLCODER_DECODE_SPLIT=%s is not runs or queue; using runs\n", v);
}

int sc_split_segments(int nthreads) { return (split_forced >= 0 ? split_forced : split_env) ? nthreads : 1; }

void sc_split_set_runs(int runs) { split_forced = runs < 0 ? -1 : runs != 0; }
