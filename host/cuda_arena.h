/* cuda_arena.h — all device memory of a CUDA model from one cudaMalloc: a bump allocator with a high-water mark.
 * Sizes are found by running the same layout code against a sizing arena first (base NULL: allocations only
 * count), so the size and the layout can never disagree, and nothing is allocated inside a step. */
#ifndef SC_CUDA_ARENA_H
#define SC_CUDA_ARENA_H

#include <stddef.h>

enum { CUDA_ARENA_ALIGN = 256, CUDA_ARENA_MAX_ITEMS = 24 };

/* What a named part of a layout took (cuda_arena_name), alignment padding included. */
typedef struct {
    const char *name;
    size_t bytes;
} cuda_arena_item;

typedef struct {
    char *base;   /* NULL: sizing pass, alloc returns NULL and only counts */
    size_t cap;   /* bytes (SIZE_MAX while sizing) */
    size_t used;  /* bytes handed out */
    size_t high;  /* largest `used` ever seen */
    /* the record: items in the order first named; their bytes add up to `used` when everything was named */
    const char *naming;
    int nitems;
    cuda_arena_item items[CUDA_ARENA_MAX_ITEMS];
} cuda_arena;

/* A sizing arena: counts what a layout would take. Needs no device (a CPU-only build has it too). */
void cuda_arena_sizing(cuda_arena *a);
/* The allocations from now on are `name` (a string that outlives the arena) in the record, which a memory plan
 * prints (`train --plan`): the layout itself says what each buffer is for. A name used again adds to its item. */
void cuda_arena_name(cuda_arena *a, const char *name);
/* One cudaMalloc of `bytes`; -1 (sc_error names the size and the free memory) when it does not fit. */
int cuda_arena_open(cuda_arena *a, size_t bytes);
/* CUDA_ARENA_ALIGN-aligned block; exits on overflow, which means the sizing pass and the layout disagreed. */
void *cuda_arena_alloc(cuda_arena *a, size_t bytes);
/* Bytes handed out so far: where the next block starts (layouts take sizes as differences of marks). */
size_t cuda_arena_mark(const cuda_arena *a);
void cuda_arena_close(cuda_arena *a);

#endif
