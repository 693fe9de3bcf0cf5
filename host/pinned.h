/* pinned.h — page-locked host buffers for asynchronous copies, with a fallback: where cudaMallocHost fails (WSL2,
 * a low RLIMIT_MEMLOCK, a container's locked-memory limit) the buffer comes from malloc instead and one warning
 * line says so, once per process. Copies from pageable memory are still correct: the driver stages them, so they
 * stop overlapping with compute and the host waits for each; nothing else changes. */
#ifndef SC_PINNED_H
#define SC_PINNED_H

#include <stddef.h>

typedef struct {
    void *p;
    int pinned; /* 1: cudaMallocHost, 0: malloc (the fallback) */
} pinned_buf;

/* Allocates bytes (at least 1) for what (named in the warning). Never fails: malloc failure exits like sc_malloc. */
void *pinned_alloc(pinned_buf *b, size_t bytes, const char *what);
void pinned_free(pinned_buf *b);
/* Number of fallbacks so far in this process (tests). */
int pinned_fallbacks(void);

#endif
