/* membw.h — the machine's memory read bandwidth, measured the way decode reads its weights, so a decode speed can
 * be read as a share of what the memory delivers (infer-bench --membw). */
#ifndef SC_MEMBW_H
#define SC_MEMBW_H

#include <stddef.h>

/* GB/s (1e9 bytes) that nthreads threads read from a bytes-sized buffer (well past the caches), each streaming its
 * contiguous share with vector loads; the best of `passes` passes. Returns -1 and sets the error when the buffer
 * cannot be allocated. */
double membw_read_gbs(int nthreads, size_t bytes, int passes);

#endif
