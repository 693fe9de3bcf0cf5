/* membw.c — see membw.h. Each thread reads its share once per pass with 64-byte loads (AVX-512 where the CPU has
 * it, else AVX2, else 8-byte words) into independent accumulators; the sums are kept so the loads are not dropped.
 * The buffer is written once first, so every page is mapped before the timed passes. */
#include "host/membw.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/clock.h"
#include "host/error.h"

__attribute__((target("avx512f"))) static uint64_t read_avx512(const char *p, size_t n) {
    __m512i a = _mm512_setzero_si512(), b = a;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a = _mm512_add_epi64(a, _mm512_load_si512((const void *)(p + i)));
        b = _mm512_add_epi64(b, _mm512_load_si512((const void *)(p + i + 64)));
    }
    uint64_t w[8], sum = 0; /* summed unsigned: the signed reduce helper would overflow (UB) on these sums */
    _mm512_storeu_si512((void *)w, _mm512_add_epi64(a, b));
    for (int k = 0; k < 8; k++) sum += w[k];
    return sum;
}

__attribute__((target("avx2"))) static uint64_t read_avx2(const char *p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = a;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a = _mm256_add_epi64(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_add_epi64(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
    }
    a = _mm256_add_epi64(a, b);
    uint64_t s[4];
    _mm256_storeu_si256((__m256i *)s, a);
    return s[0] + s[1] + s[2] + s[3];
}

static uint64_t read_words(const char *p, size_t n) {
    const uint64_t *w = (const uint64_t *)p;
    uint64_t s[8] = {0};
    for (size_t i = 0; i + 8 <= n / 8; i += 8)
        for (int k = 0; k < 8; k++) s[k] += w[i + k];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

double membw_read_gbs(int nthreads, size_t bytes, int passes) {
    if (nthreads < 1) nthreads = 1;
    bytes &= ~(size_t)4095; /* whole pages; each thread's share a multiple of 128 bytes below */
    char *buf = aligned_alloc(4096, bytes ? bytes : 4096);
    if (!buf) return sc_fail("membw: cannot allocate %zu MiB to measure memory bandwidth", bytes >> 20), -1;
    memset(buf, 1, bytes);
    __builtin_cpu_init();
    int isa = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
    double best = 0;
    volatile uint64_t sink = 0;
    for (int pass = 0; pass < passes; pass++) {
        uint64_t sum = 0;
        double t0 = clock_now();
#pragma omp parallel num_threads(nthreads) reduction(+ : sum)
        {
            int nt = omp_get_num_threads(), t = omp_get_thread_num();
            size_t share = bytes / (size_t)nt & ~(size_t)127, off = share * (size_t)t;
            if (t == nt - 1) share = (bytes - off) & ~(size_t)127;
            sum += isa == 2 ? read_avx512(buf + off, share) : isa == 1 ? read_avx2(buf + off, share)
                                                                       : read_words(buf + off, share);
        }
        double dt = clock_now() - t0;
        sink += sum;
        if (dt > 0 && bytes / dt / 1e9 > best) best = bytes / dt / 1e9;
    }
    (void)sink;
    free(buf);
    return best;
}
