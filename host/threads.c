/* threads.c — see threads.h. */
#include "host/threads.h"

#include "host/clock.h"
#include "host/error.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
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

int sc_cpus_available(void) {
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
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

/* ---- the decode thread pool ----
 * A region is open from the moment the caller publishes it until the caller's own share is done; a worker joins
 * it only while it is open, so a worker the scheduler has not run (a loaded machine) never holds the caller back:
 * the caller takes that worker's items (sc_split) and closes the region. The caller waits only for workers that
 * joined. The region's state is one 64-bit word: its generation (high 32 bits), a closed bit and the count of
 * workers inside, so joining (a compare-and-swap) and closing (a fetch-or) cannot cross. */

enum {
    SC_POOL_IDLE_US = 100,    /* spin after a step before sleeping: covers picking the next token */
    SC_POOL_HOLD_US = 2000,   /* while held, a gap this long (the caller preempted) puts the workers to sleep too */
    SC_POOL_YIELD_SPINS = 2048, /* the caller waiting this long for a worker yields its core (a preempted worker) */
    SC_POOL_PREEMPTED_US = 100, /* a spinning worker that lost its core this long: the machine is oversubscribed */
    SC_POOL_SPIN_SHORT_US = 10000, /* ...so for this long the workers sleep soon after each region */
    SC_POOL_CONTENDED_US = 50000, /* a held step that found the cores contended: not held for this long (or
                                    * longer, sc_pool_hold) */
    SC_POOL_CONTENDED_SPIN_US = 5, /* workers' spin in both cases (GOMP_SPINCOUNT 300 is about 6 us) */
    SC_POOL_MEASURE_US = 500,  /* a held step at least this long tells whether the cores are contended... */
    SC_POOL_RAN_PERCENT = 85,  /* ...by whether the holder ran for less than this share of it */
};
#define POOL_CLOSED ((uint64_t)1 << 31)
#define POOL_ACTIVE (POOL_CLOSED - 1)

struct sc_pool {
    int n;
    pthread_t *tid;
    sc_par_fn fn; /* the current region: written before it opens, read by workers that joined it */
    void *arg;
    _Alignas(64) _Atomic uint64_t st; /* generation << 32 | closed | workers inside */
    _Alignas(64) atomic_int hold, quit, sleepers;
    atomic_uint wakes; /* bumped by sc_pool_hold(p, 1): sleeping workers go back to spinning */
    _Atomic int64_t contended_until; /* pool_now_us() before which the pool is not held and workers barely spin */
    _Atomic int64_t spin_short_until; /* ...before which workers barely spin (one of them was descheduled) */
    int64_t hold_wall, hold_cpu;     /* the holder's clocks when it took the pool */
    int backoff;                     /* SC_POOL_CONTENDED_US units of the current back-off (0: none) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_long jobs, sleeps, joins, preempted, contended;
};

static _Thread_local sc_pool *pool_held;
static _Thread_local int pool_in_worker; /* a region inside a region runs on the one thread */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t pool_now_us(void) { return (int64_t)(clock_now() * 1e6); }

static unsigned pool_gen(uint64_t st) { return (unsigned)(st >> 32); }

/* A generation other than `seen` (or any, once quit is set): spin while held (up to SC_POOL_HOLD_US of waiting) or
 * for SC_POOL_IDLE_US, then sleep until a region comes or the pool is held again (wakes is bumped). The sleepers
 * count and st are both sequentially consistent: a caller that opens a region either sees the sleeper (and signals
 * under the mutex, which the sleeper holds until it waits) or the sleeper sees the new generation.
 * Spinning pays only on cores nobody else wants: on an oversubscribed machine the spinner uses up the process's
 * share of the CPU that the caller needs, and the scheduler favours threads that slept. A worker whose spin loop
 * finds a gap in time (it was descheduled) makes the workers sleep soon after each region for SC_POOL_SPIN_SHORT_US,
 * as OpenMP's do under decode's GOMP_SPINCOUNT (the caller wakes them per region); the holder's own measure
 * (sc_pool_hold) stops holding the pool altogether. */
static unsigned pool_wait(sc_pool *p, unsigned seen) {
    for (;;) {
        int64_t t0 = pool_now_us(), last = t0;
        int contended = t0 < atomic_load_explicit(&p->contended_until, memory_order_relaxed) ||
                        t0 < atomic_load_explicit(&p->spin_short_until, memory_order_relaxed);
        int held = atomic_load_explicit(&p->hold, memory_order_relaxed);
        int64_t budget = contended ? SC_POOL_CONTENDED_SPIN_US : held ? SC_POOL_HOLD_US : SC_POOL_IDLE_US;
        for (unsigned i = 1;; i++) {
            unsigned g = pool_gen(atomic_load_explicit(&p->st, memory_order_relaxed));
            if (g != seen || atomic_load_explicit(&p->quit, memory_order_relaxed)) return g;
            cpu_relax();
            if (i % 64 == 0) {
                int64_t now = pool_now_us();
                if (now - last > SC_POOL_PREEMPTED_US) {
                    atomic_store_explicit(&p->spin_short_until, now + SC_POOL_SPIN_SHORT_US, memory_order_relaxed);
                    atomic_fetch_add_explicit(&p->preempted, 1, memory_order_relaxed);
                    break;
                }
                last = now;
                if (held && !atomic_load_explicit(&p->hold, memory_order_relaxed)) /* released: a short spin */
                    held = 0, budget = budget < SC_POOL_IDLE_US ? budget : SC_POOL_IDLE_US;
                if (now - t0 > budget) break;
            }
        }
        pthread_mutex_lock(&p->mu);
        atomic_fetch_add(&p->sleepers, 1);
        atomic_fetch_add_explicit(&p->sleeps, 1, memory_order_relaxed);
        unsigned w = atomic_load(&p->wakes);
        while (pool_gen(atomic_load(&p->st)) == seen && !atomic_load(&p->quit) && atomic_load(&p->wakes) == w)
            pthread_cond_wait(&p->cv, &p->mu);
        atomic_fetch_sub(&p->sleepers, 1);
        pthread_mutex_unlock(&p->mu);
    }
}

/* wakes the sleeping workers (after st, wakes or quit changed) */
static void pool_signal(sc_pool *p) {
    if (!atomic_load(&p->sleepers)) return;
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

typedef struct {
    sc_pool *p;
    int t;
} pool_worker_arg;

static void *pool_worker(void *a) {
    sc_pool *p = ((pool_worker_arg *)a)->p;
    int t = ((pool_worker_arg *)a)->t;
    free(a);
    pool_in_worker = 1;
    for (unsigned seen = 0;;) {
        seen = pool_wait(p, seen);
        if (atomic_load_explicit(&p->quit, memory_order_relaxed)) return NULL;
        /* join generation `seen` if it is still open */
        uint64_t st = atomic_load_explicit(&p->st, memory_order_relaxed);
        int joined = 0;
        while (pool_gen(st) == seen && !(st & POOL_CLOSED) && !joined)
            joined = atomic_compare_exchange_weak_explicit(&p->st, &st, st + 1, memory_order_acquire,
                                                           memory_order_relaxed);
        if (!joined) continue; /* closed already, or a newer one opened: look again */
        p->fn(p->arg, t, p->n);
        atomic_fetch_add_explicit(&p->joins, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&p->st, 1, memory_order_release);
    }
}

sc_pool *sc_pool_create(int nthreads) {
    if (nthreads <= 1) return NULL;
    sc_pool *p = sc_calloc(1, sizeof *p);
    p->n = nthreads;
    p->tid = sc_calloc((size_t)nthreads, sizeof(pthread_t));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    atomic_store(&p->st, POOL_CLOSED); /* generation 0, closed */
    for (int t = 1; t < nthreads; t++) {
        pool_worker_arg *a = sc_malloc(sizeof *a);
        a->p = p, a->t = t;
        if (pthread_create(&p->tid[t], NULL, pool_worker, a) != 0) { /* fewer workers: the regions still run */
            free(a);
            p->n = t;
            break;
        }
    }
    if (p->n > 1) return p;
    sc_pool_free(p);
    return NULL;
}

void sc_pool_free(sc_pool *p) {
    if (!p) return;
    atomic_store(&p->quit, 1);
    pool_signal(p);
    for (int t = 1; t < p->n; t++) pthread_join(p->tid[t], NULL);
    if (pool_held == p) pool_held = NULL;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->tid);
    free(p);
}

static int64_t thread_cpu_us(void) { return (int64_t)(clock_thread_cpu() * 1e6); }

/* Holding measures the caller: it spins at every region's end, so on a machine with cores to spare it runs for the
 * whole step; when it ran less than SC_POOL_RAN_PERCENT of the step's wall time, other processes want the cores
 * and spinning takes CPU from the caller's own work (the scheduler shares a process group's time among its
 * threads). The pool then stays unheld (sc_par is OpenMP's, as before the pool) for a back-off that doubles while
 * the held steps in between keep finding contention (SC_POOL_CONTENDED_US up to 32 times that). */
int sc_pool_hold(sc_pool *p, int on) {
    if (!p) {
        if (!on) pool_held = NULL;
        return 0;
    }
    int64_t now = pool_now_us();
    if (!on) {
        if (pool_held == p) {
            int64_t wall = now - p->hold_wall, cpu = thread_cpu_us() - p->hold_cpu;
            if (wall >= SC_POOL_MEASURE_US && cpu * 100 < wall * SC_POOL_RAN_PERCENT) {
                p->backoff = p->backoff ? (p->backoff < 32 ? 2 * p->backoff : p->backoff) : 1;
                atomic_store(&p->contended_until, now + (int64_t)p->backoff * SC_POOL_CONTENDED_US);
                atomic_fetch_add_explicit(&p->contended, 1, memory_order_relaxed);
            } else if (wall >= SC_POOL_MEASURE_US) {
                p->backoff = 0;
            }
        }
        pool_held = NULL;
        atomic_store(&p->hold, 0);
        return 0;
    }
    if (now < atomic_load(&p->contended_until)) return 0; /* backing off: OpenMP */
    pool_held = p;
    p->hold_wall = now, p->hold_cpu = thread_cpu_us();
    atomic_store(&p->hold, 1);
    atomic_fetch_add(&p->wakes, 1); /* wake the workers now: their wake-up overlaps the step's first serial work */
    pool_signal(p);
    return 1;
}

static void pool_run(sc_pool *p, sc_par_fn fn, void *arg) {
    p->fn = fn, p->arg = arg;
    uint64_t st = atomic_load_explicit(&p->st, memory_order_relaxed); /* closed, nobody inside */
    atomic_store(&p->st, (uint64_t)(pool_gen(st) + 1) << 32);       /* open (sequentially consistent) */
    pool_signal(p);
    pool_in_worker = 1;
    fn(arg, 0, p->n);
    pool_in_worker = 0;
    st = atomic_fetch_or_explicit(&p->st, POOL_CLOSED, memory_order_acq_rel) | POOL_CLOSED;
    for (unsigned i = 1; st & POOL_ACTIVE; i++) { /* the workers that joined finish their items */
        cpu_relax();
        if (i % SC_POOL_YIELD_SPINS == 0) sched_yield();
        st = atomic_load_explicit(&p->st, memory_order_acquire);
    }
    atomic_fetch_add_explicit(&p->jobs, 1, memory_order_relaxed);
}

void sc_par(sc_par_fn fn, void *arg) {
    if (pool_in_worker) {
        fn(arg, 0, 1);
        return;
    }
    if (pool_held) {
        pool_run(pool_held, fn, arg);
        return;
    }
#pragma omp parallel
    fn(arg, omp_get_thread_num(), omp_get_num_threads());
}

int sc_par_threads(void) {
    if (pool_in_worker) return 1;
    return pool_held ? pool_held->n : omp_get_max_threads();
}

long sc_pool_jobs(const sc_pool *p) { return p ? atomic_load(&p->jobs) : 0; }
long sc_pool_sleeps(const sc_pool *p) { return p ? atomic_load(&p->sleeps) : 0; }
long sc_pool_joins(const sc_pool *p) { return p ? atomic_load(&p->joins) : 0; }
long sc_pool_preempted(const sc_pool *p) { return p ? atomic_load(&p->preempted) : 0; }
long sc_pool_contended(const sc_pool *p) { return p ? atomic_load(&p->contended) : 0; }

void sc_pool_end_backoff(sc_pool *p) {
    if (!p) return;
    atomic_store(&p->contended_until, 0);
    atomic_store(&p->spin_short_until, 0);
    p->backoff = 0;
}
int sc_pool_asleep(sc_pool *p) { return p ? atomic_load(&p->sleepers) : 0; }
