/* pinned.c — see pinned.h. */
#include "host/pinned.h"

#include <stdio.h>
#include <stdlib.h>

#include "host/error.h"

static int fallbacks;

int pinned_fallbacks(void) { return fallbacks; }

#ifdef SC_HAVE_CUDA
#include <cuda_runtime_api.h>

void *pinned_alloc(pinned_buf *b, size_t bytes, const char *what) {
    b->p = NULL, b->pinned = 0;
    cudaError_t e = cudaMallocHost(&b->p, bytes ? bytes : 1);
    if (e == cudaSuccess && b->p) {
        b->pinned = 1;
        return b->p;
    }
    cudaGetLastError(); /* a refused page lock leaves the context usable: not a sticky error */
    if (!fallbacks++)
        fprintf(stderr, "warning: cannot pin %.1f MiB of host memory for %s (%s; WSL2 or a low `ulimit -l`?): using "
                "pageable memory, host-device copies will not overlap with compute\n", bytes / 1048576.0, what,
                cudaGetErrorString(e));
    b->p = sc_malloc(bytes ? bytes : 1);
    return b->p;
}

void pinned_free(pinned_buf *b) {
    if (!b->p) return;
    if (b->pinned) cudaFreeHost(b->p);
    else free(b->p);
    b->p = NULL;
}
#else
void *pinned_alloc(pinned_buf *b, size_t bytes, const char *what) {
    (void)what;
    b->pinned = 0;
    b->p = sc_malloc(bytes ? bytes : 1);
    return b->p;
}

void pinned_free(pinned_buf *b) {
    free(b->p);
    b->p = NULL;
}
#endif
