/* cuda_arena.c — see cuda_arena.h. Sizing and the record need no CUDA; opening and closing do. */
#include "host/cuda_arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"

void cuda_arena_sizing(cuda_arena *a) {
    memset(a, 0, sizeof *a);
    a->cap = SIZE_MAX;
}

void cuda_arena_name(cuda_arena *a, const char *name) { a->naming = name; }

static void arena_record(cuda_arena *a, size_t bytes) {
    if (!a->naming) return;
    int i = 0;
    while (i < a->nitems && strcmp(a->items[i].name, a->naming) != 0) i++;
    if (i == CUDA_ARENA_MAX_ITEMS) {
        fprintf(stderr, "cuda_arena_name: more than %d named items\n", CUDA_ARENA_MAX_ITEMS);
        abort();
    }
    if (i == a->nitems) a->items[a->nitems++] = (cuda_arena_item){a->naming, 0};
    a->items[i].bytes += bytes;
}

#ifdef SC_HAVE_KERNELS
#include "host/cuda_check.h"

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

#endif

void *cuda_arena_alloc(cuda_arena *a, size_t bytes) {
    size_t start = (a->used + CUDA_ARENA_ALIGN - 1) / CUDA_ARENA_ALIGN * CUDA_ARENA_ALIGN;
    size_t end = start + (bytes ? bytes : 1);
    if (end > a->cap || end < start) {
        fprintf(stderr, "cuda_arena_alloc: %zu bytes at %zu exceed the arena's %zu (layout and sizing disagree)\n",
                bytes, start, a->cap);
        abort();
    }
    arena_record(a, end - a->used);
    a->used = end;
    if (end > a->high) a->high = end;
    return a->base ? a->base + start : NULL;
}

size_t cuda_arena_mark(const cuda_arena *a) { return a->used; }

#ifdef SC_HAVE_KERNELS
void cuda_arena_close(cuda_arena *a) {
    if (a->base) CU_CHECK(cudaFree(a->base));
    memset(a, 0, sizeof *a);
}
#endif
