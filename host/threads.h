/* threads.h — one knob for OpenMP and OpenBLAS thread counts, and the work splitter of decode's parallel regions. */
#ifndef SC_THREADS_H
#define SC_THREADS_H

#include <stdatomic.h>
#include <stdint.h>

/* n <= 0: all cores. Returns the count in effect. */
int sc_set_threads(int n);

/* Items [0, n) of one parallel region in contiguous segments, one per thread. Each thread runs its own segment
 * front to back, so it reads one linear stream of memory (what the prefetchers follow; a shared queue of items
 * hands each thread every other block instead, and each block starts cold). A thread done with its own takes
 * items one at a time from the back of the others' segments: a thread that the scheduler preempts (the machine
 * is shared) holds the region back by one item, not by half of it, and a team smaller than planned (nested
 * regions, a thread limit) still runs every item. Which thread runs an item never changes what it computes. */
enum { SC_SPLIT_MAX = 64 };
typedef struct {
    int nseg;
    struct {
        _Alignas(64) _Atomic uint64_t span; /* next item to take from the front (low 32 bits), end (high 32) */
    } seg[SC_SPLIT_MAX];
} sc_split;

/* Plans n items for nthreads threads (clamped to 1..SC_SPLIT_MAX); call before the parallel region. */
void sc_split_init(sc_split *s, int n, int nthreads);
/* The next item for thread t (omp_get_thread_num()), or -1 when every item is taken. */
int sc_split_next(sc_split *s, int t);

#endif
