/* test_threads_pool.c — the decode thread pool (host/threads.h): sc_par runs its function once on every thread of
 * the held pool (the caller as thread 0) and returns after all of them, thousands of regions in a row with no
 * item lost; workers asleep (after a step, or a gap longer than the held spin) come back for the next region or
 * the next hold; a region inside a region runs on one thread; without a held pool sc_par is an OpenMP team; a
 * pool of one thread is none; freeing a pool whose workers spin or sleep returns. */
#include <omp.h>
#include <stdatomic.h>
#include <time.h>

#include "host/threads.h"
#include "tests/testutil.h"

enum { MAXT = 8 };

typedef struct {
    atomic_int calls[MAXT]; /* per thread index */
    atomic_int bad_nt;      /* calls whose nt differed from the expected team */
    atomic_long sum;
    int nt_want;
    int wait_joins; /* the caller waits (up to 2 s) until this many workers are in, before it takes items */
    sc_split split;
    int n;
} region;

static void nap_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void count_part(void *arg, int t, int nt) {
    region *r = arg;
    if (t >= 0 && t < MAXT) atomic_fetch_add(&r->calls[t], 1);
    if (nt != r->nt_want) atomic_fetch_add(&r->bad_nt, 1);
    if (t == 0 && r->wait_joins) {
        int in = 0;
        for (int ms = 0; ms < 2000 && in < r->wait_joins; ms++) {
            nap_ms(1);
            in = 0;
            for (int i = 1; i < MAXT; i++) in += atomic_load(&r->calls[i]);
        }
    }
    for (int item; (item = sc_split_next(&r->split, t)) >= 0;) atomic_fetch_add(&r->sum, item + 1);
}

/* one region of n items: the caller called once, any other thread at most once, all with the team size; every
 * item once (sum 1..n) */
static int run_region(int nt, int n) {
    region r = {.nt_want = nt, .n = n};
    sc_split_init(&r.split, n, nt);
    sc_par(count_part, &r);
    int bad = atomic_load(&r.bad_nt) + (atomic_load(&r.sum) != (long)n * (n + 1) / 2);
    bad += atomic_load(&r.calls[0]) != 1;
    for (int t = 1; t < MAXT; t++) bad += atomic_load(&r.calls[t]) > (t < nt);
    return bad;
}

/* 20 ms, and more (up to 2 s) while fewer than n workers sleep: a loaded machine may not have run them yet */
static void nap_until_asleep(sc_pool *p, int n) {
    nap_ms(20);
    for (int ms = 0; ms < 2000 && sc_pool_asleep(p) < n; ms += 5) nap_ms(5);
}

typedef struct {
    atomic_int inner_calls, inner_bad;
} nested;

static void inner_part(void *arg, int t, int nt) {
    nested *n = arg;
    atomic_fetch_add(&n->inner_calls, 1);
    if (t != 0 || nt != 1) atomic_fetch_add(&n->inner_bad, 1);
}

static void outer_part(void *arg, int t, int nt) {
    (void)t, (void)nt;
    if (sc_par_threads() != 1) atomic_fetch_add(&((nested *)arg)->inner_bad, 1);
    sc_par(inner_part, arg);
}

int main(void) {
    tu_check("a pool of 1 thread is none (NULL)", sc_pool_create(1) != NULL, 0);
    sc_pool_hold(NULL, 1); /* holding none: sc_par stays OpenMP */
    omp_set_num_threads(2);
    tu_check("no pool held: sc_par_threads is OpenMP's", sc_par_threads() != omp_get_max_threads(), 0);
    tu_check("no pool held: one OpenMP region of 2 threads, 1000 items once each", run_region(2, 1000), 0);

    for (int nt = 2; nt <= 3; nt++) {
        sc_pool *p = sc_pool_create(nt);
        char what[160];
        omp_set_num_threads(nt);
        snprintf(what, sizeof what, "pool of %d: created", nt);
        tu_check(what, p == NULL, 0);
        if (!p) continue;
        snprintf(what, sizeof what, "pool of %d: held", nt);
        tu_check(what, sc_pool_hold(p, 1) != 1, 0);
        snprintf(what, sizeof what, "pool of %d held: sc_par_threads", nt);
        tu_check(what, sc_par_threads() != nt, 0);
        int bad = 0;
        for (int i = 0; i < 3000; i++) bad += run_region(nt, 1 + i % 200);
        snprintf(what, sizeof what, "pool of %d held: 3000 regions, each thread at most once, each item once", nt);
        tu_check(what, bad, 0);
        snprintf(what, sizeof what, "pool of %d held: 3000 regions counted", nt);
        tu_check(what, sc_pool_jobs(p) != 3000, 0);

        nested ns = {0};
        sc_par(outer_part, &ns);
        snprintf(what, sizeof what, "pool of %d: a region inside a region runs on its one thread", nt);
        tu_check(what, atomic_load(&ns.inner_bad) + (atomic_load(&ns.inner_calls) < 1), 0);

        /* a gap longer than the held spin (2 ms): the workers sleep and still come for the next region */
        nap_until_asleep(p, nt - 1);
        snprintf(what, sizeof what, "pool of %d held, a gap over 2 ms: every worker asleep", nt);
        tu_check(what, (sc_pool_asleep(p) != nt - 1) + (sc_pool_sleeps(p) < nt - 1), 0);
        snprintf(what, sizeof what, "pool of %d held, after the gap: a region runs", nt);
        tu_check(what, run_region(nt, 500), 0);

        /* the holder slept through most of that hold, as if other processes had the cores: the pool backs off */
        long c0 = sc_pool_contended(p);
        sc_pool_hold(p, 0);
        snprintf(what, sizeof what, "pool of %d: a hold whose holder mostly did not run counts as contended", nt);
        tu_check(what, sc_pool_contended(p) - c0 != 1, 0);
        snprintf(what, sizeof what, "pool of %d backing off: not held, sc_par is OpenMP's", nt);
        tu_check(what, sc_pool_hold(p, 1) + (sc_par_threads() != omp_get_max_threads()) + run_region(nt, 100), 0);
        sc_pool_end_backoff(p);
        snprintf(what, sizeof what, "pool of %d, back-off over: held again", nt);
        tu_check(what, sc_pool_hold(p, 1) != 1 || sc_par_threads() != nt, 0);

        /* released: OpenMP again; the workers sleep after their short spin; holding again wakes them */
        sc_pool_hold(p, 0);
        snprintf(what, sizeof what, "pool of %d released: sc_par is an OpenMP team again", nt);
        tu_check(what, run_region(nt, 300) + (sc_par_threads() != omp_get_max_threads()), 0);
        nap_until_asleep(p, nt - 1);
        snprintf(what, sizeof what, "pool of %d released: every worker asleep", nt);
        tu_check(what, sc_pool_asleep(p) != nt - 1, 0);
        sc_pool_end_backoff(p); /* on a loaded machine the last hold may have looked contended */
        sc_pool_hold(p, 1);
        long j0 = sc_pool_joins(p);
        region slow = {.nt_want = nt, .wait_joins = nt - 1};
        sc_split_init(&slow.split, 10, nt);
        sc_par(count_part, &slow);
        snprintf(what, sizeof what, "pool of %d, woken by holding it: every worker joins a region that waits for them",
                 nt);
        tu_check(what, (sc_pool_joins(p) - j0 != nt - 1) + (atomic_load(&slow.sum) != 55), 0);
        bad = 0;
        for (int i = 0; i < 50; i++) bad += run_region(nt, 64);
        snprintf(what, sizeof what, "pool of %d held again: 50 regions", nt);
        tu_check(what, bad, 0);
        sc_pool_hold(p, 0);
        sc_pool_free(p); /* workers spinning (just released): must return */
    }

    sc_pool *p = sc_pool_create(2);
    nap_ms(10);
    sc_pool_free(p); /* workers asleep, never used */
    tu_check("a pool freed with sleeping workers returns", 0, 0);
    return tu_finish("test_threads_pool");
}
