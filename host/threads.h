/* threads.h — one knob for OpenMP and OpenBLAS thread counts, and the work splitter of decode's parallel regions. */
#ifndef SC_THREADS_H
#define SC_THREADS_H

#include <stdatomic.h>
#include <stdint.h>

/* n <= 0: all cores. Returns the count in effect. */
int sc_set_threads(int n);

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

#endif
