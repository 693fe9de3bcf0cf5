/* race_event.c — the emulator's stream order as a check of event waits (tests/gpu.cmake): stream a copies a buffer
 * and records an event, stream b waits for it and converts the buffer. Built twice: as is, every one of 32 trials
 * must give the copied values; with -DEMU_DROP_WAIT (the planted bug: the wait removed) the emulator's random
 * interleaving of the two streams must run b first in at least one trial, so the bug shows as wrong numbers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime_api.h>

#include "kernels/kernels.h"

#define CHECK(call)                                                                                                \
    do {                                                                                                           \
        if ((call) != cudaSuccess) {                                                                               \
            fprintf(stderr, "race_event: %s failed\n", #call);                                                     \
            return 1;                                                                                              \
        }                                                                                                          \
    } while (0)

int main(void) {
    enum { N = 1024, TRIALS = 32 };
    uint16_t *h = malloc(sizeof(uint16_t) * N);
    float *y_h = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) h[i] = 0x3c00; /* 1.0 */
    kn_half *src, *x;
    float *y;
    CHECK(cudaMalloc((void **)&src, sizeof(uint16_t) * N));
    CHECK(cudaMalloc((void **)&x, sizeof(uint16_t) * N));
    CHECK(cudaMalloc((void **)&y, sizeof(float) * N));
    CHECK(cudaMemcpy(src, h, sizeof(uint16_t) * N, cudaMemcpyHostToDevice));
    cudaStream_t a, b;
    cudaEvent_t copied;
    CHECK(cudaStreamCreate(&a));
    CHECK(cudaStreamCreate(&b));
    CHECK(cudaEventCreate(&copied));
    int wrong = 0;
    for (int t = 0; t < TRIALS; t++) {
        CHECK(cudaMemset(x, 0, sizeof(uint16_t) * N));
        CHECK(cudaMemcpyAsync(x, src, sizeof(uint16_t) * N, cudaMemcpyDeviceToDevice, a));
        CHECK(cudaEventRecord(copied, a));
#ifndef EMU_DROP_WAIT
        CHECK(cudaStreamWaitEvent(b, copied, 0));
#endif
        kn_f16_to_f32(y, x, N, b);
        CHECK(cudaDeviceSynchronize());
        CHECK(cudaMemcpy(y_h, y, sizeof(float) * N, cudaMemcpyDeviceToHost));
        int bad = 0;
        for (int i = 0; i < N; i++) bad |= y_h[i] != 1.0f;
        wrong += bad;
    }
#ifdef EMU_DROP_WAIT
    printf("race_event: without the event wait, %d of %d trials read the buffer before the copy (expected > 0)\n",
           wrong, TRIALS);
    return wrong > 0 ? 0 : 1;
#else
    printf("race_event: with the event wait, %d of %d trials wrong (expected 0)\n", wrong, TRIALS);
    return wrong == 0 ? 0 : 1;
#endif
}
