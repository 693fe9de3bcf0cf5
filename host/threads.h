/* threads.h — one knob for OpenMP and OpenBLAS thread counts, and the work splitter of decode's parallel regions. */
#ifndef SC_THREADS_H
#define SC_THREADS_H

#include <stdatomic.h>
#include <stdint.h>

/* n <= 0: all cores. Returns the count in effect. */
int sc_set_threads(int n);
/* the CPUs this process may run on (its affinity mask; the online count where that cannot be read), at least 1 */
int sc_cpus_available(void);

/* Items [0, n) of one parallel region in contiguous segments. One segment is a shared queue: every thread takes
 * the next item (OpenMP's dynamic schedule), so two threads read alternate blocks. One segment per thread gives
 * each thread one contiguous run, front to back, a linear stream for the prefetchers; a thread done with its own
 * takes over the next items of the others' runs, front to back as well, so a thread that the scheduler preempts
 * holds the region back by one item, not by half of it, and a team smaller than planned (nested regions, a thread
 * limit) still runs every item, in order when it is one thread. Which thread runs an item never changes what it
 * computes. */
enum { SC_SPLIT_MAX = 64 };
typedef struct {
    int nseg;
    struct {
        _Alignas(64) atomic_int next; /* next item of the segment to hand out (may pass end) */
        int end;                      /* one past the segment's last item */
    } seg[SC_SPLIT_MAX];
} sc_split;

/* Plans n items in nseg segments (clamped to 1..SC_SPLIT_MAX); call before the parallel region. */
void sc_split_init(sc_split *s, int n, int nseg);
/* The next item for thread t (omp_get_thread_num()), or -1 when every item is taken. */
int sc_split_next(sc_split *s, int t);

/* The segments decode's INT8 products use with `nthreads` threads: nthreads (one run per thread, the default) or
 * 1 (a shared queue) when SMALLCODER_DECODE_SPLIT=queue. Measured 2026-12-05 on the 2-core machine, only under
 * load (no idle machine this session): with both threads spinning (GOMP_SPINCOUNT unset), runs read each 304m
 * matrix 10-60% faster (p10 of 200-500 interleaved calls, load 12-26); with decode's short spin (300,
 * host/cpu_tune.h) the queue was 5-15% faster per matrix at load 26. End to end, 304m two-thread decode at load
 * 21-25 (3-4 rounds per A/B, rotating order) once favoured the queue (OpenMP's own: 74-82 tok/s, runs 47-72) and
 * once runs (66-81, queue 43-82). The variable lets bench/llamacpp-cpu compare the two on an idle machine. */
int sc_split_segments(int nthreads);
/* Tests: forces runs (1) or the queue (0); -1 goes back to the environment's choice. */
void sc_split_set_runs(int runs);

/* A decode thread pool. A decode step has ~70-92 short parallel regions (the INT8 products, attention) with
 * serial work between them (norms, RoPE, a short context's attention, SwiGLU, activation quantization). OpenMP's
 * worker spins GOMP_SPINCOUNT (300, cpu_tune.c: ~6 us) and then sleeps; a gap longer than that puts it to sleep and
 * the next region pays a wake-up, which on this VM (2 vCPUs) costs tens of microseconds. The pool's workers spin
 * for as long as the pool is held (sc_pool_hold: the CPU engine holds it for a decode step) and sleep only between
 * steps, after a short spin (SC_POOL_IDLE_US) that covers the sampler between two steps.
 * sc_par runs a region on the calling thread's held pool, or as an OpenMP region when it holds none, so code that
 * uses it runs the same either way: fn(arg, t, nt) at most once for each thread t of nt, always for the caller
 * (t = 0). On the pool a worker joins a region only while the caller still runs its own share (a worker the
 * scheduler has not run holds nobody back), so fn must hand its work out dynamically (sc_split, an atomic counter):
 * whichever threads come, together they do all of it, and t only picks a thread's scratch. */
typedef struct sc_pool sc_pool;
typedef void (*sc_par_fn)(void *arg, int t, int nt);

/* nthreads threads in all (nthreads - 1 workers); NULL when nthreads <= 1 (sc_par then runs on the caller). */
sc_pool *sc_pool_create(int nthreads);
void sc_pool_free(sc_pool *p);
/* on != 0: sc_par on this thread runs on p and p's workers spin between regions; returns 1, or 0 when it did not
 * take the pool (NULL, or backing off after steps that found the cores contended: see threads.c). on == 0: back to
 * OpenMP, the workers sleep after a short spin. One thread holds a pool at a time (the engine's callers are
 * serialized: the server's engine_lock). */
int sc_pool_hold(sc_pool *p, int on);
/* runs fn on every thread of the held pool (or an OpenMP team) and returns when all have returned */
void sc_par(sc_par_fn fn, void *arg);
/* the threads sc_par runs with now: the held pool's, or omp_get_max_threads() */
int sc_par_threads(void);
/* for tests and measurements: regions run on the pool, times its workers went to sleep (a wake-up each), and
 * regions a worker joined */
long sc_pool_jobs(const sc_pool *p);
long sc_pool_sleeps(const sc_pool *p);
long sc_pool_joins(const sc_pool *p);
/* times a spinning worker found it had been descheduled (the pool then stops spinning for a while) */
long sc_pool_preempted(const sc_pool *p);
/* held steps that found the cores contended (each starts a back-off) */
long sc_pool_contended(const sc_pool *p);
/* for tests: ends a back-off now */
void sc_pool_end_backoff(sc_pool *p);
/* workers asleep now */
int sc_pool_asleep(sc_pool *p);

#endif
