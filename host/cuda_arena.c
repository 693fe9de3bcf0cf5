/* cuda_arena.c — see cuda_arena.h. */
#ifdef SC_HAVE_KERNELS
#include "host/cuda_arena.h"

#include <stdint.h>
#include <string.h>

#include "host/cuda_check.h"
#include "host/error.h"

void cuda_arena_sizing(cuda_arena *a) {
    memset(a, 0, sizeof *a);
    a->cap = SIZE_MAX;
}

int cuda_arena_open(cuda_arena *a, size_t bytes) {
    memset(a, 0, sizeof *a);
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* clear it: an allocation failure leaves the context usable */
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        return sc_fail("cannot allocate %.1f MiB of device memory (%.1f MiB free of %.1f MiB): %s",
                       bytes / 1048576.0, free_b / 1048576.0, total_b / 1048576.0, cudaGetErrorString(e));
    }
    a->base = p;
    a->cap = bytes;
    return 0;
}

void *cuda_arena_alloc(cuda_arena *a, size_t bytes) {
    size_t start = (a->used + CUDA_ARENA_ALIGN - 1) / CUDA_ARENA_ALIGN * CUDA_ARENA_ALIGN;
    size_t end = start + (bytes ? bytes : 1);
    if (end > a->cap || end < start) {
        fprintf(stderr, "cuda_arena_alloc: %zu bytes at %zu exceed the arena's %zu (layout and sizing disagree)\n",
                bytes, start, a->cap);
        abort();
    }
    a->used = end;
    if (end > a->high) a->high = end;
    return a->base ? a->base + start : NULL;
}

size_t cuda_arena_mark(const cuda_arena *a) { return a->used; }

void cuda_arena_close(cuda_arena *a) {
    if (a->base) CU_CHECK(cudaFree(a->base));
    memset(a, 0, sizeof *a);
}
#else
typedef int cuda_arena_unused; /* this build has no CUDA kernels */
#endif
