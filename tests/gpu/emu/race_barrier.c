/* race_barrier.c — the racecheck's planted bug (tests/gpu.cmake): run over kernels/decode_attention.cu with its
 * second __syncthreads() taken out (translate.py --remove-barrier 2: the softmax then reads scores other threads
 * may not have written), the emulator must report hazards (--expect-race); over the real kernel, none. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "kernels/kernels.h"

long emu_racecheck_hazards(void); /* tests/gpu/emu/emu_racecheck.cpp */

static void *up(const void *h, size_t bytes) {
    void *d = NULL;
    if (cudaMalloc(&d, bytes) != cudaSuccess || cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
        fprintf(stderr, "race_barrier: device allocation failed\n");
        exit(1);
    }
    return d;
}

int main(int argc, char **argv) {
    int expect_race = argc > 1 && !strcmp(argv[1], "--expect-race");
    setenv("SC_EMU_RACECHECK", "count", 1); /* count hazards instead of aborting at the first */
    enum { HD = 64, NH = 4, NKV = 2, CTX = 200, POS = 150 };
    size_t cache = (size_t)CTX * NKV * HD, qkv_n = (size_t)(NH + 2 * NKV) * HD;
    uint16_t *h = malloc(sizeof(uint16_t) * cache);
    for (size_t i = 0; i < cache; i++) h[i] = (uint16_t)(0x3000 + (i * 37) % 0x800); /* 0.125 .. 0.25 */
    kn_half *k = up(h, sizeof(uint16_t) * cache), *v = up(h, sizeof(uint16_t) * cache);
    kn_half *qkv = up(h, sizeof(uint16_t) * qkv_n);
    kn_kv_step st = {.pos = POS, .n_ctx = CTX, .k = k, .v = v};
    kn_kv_step *dst = up(&st, sizeof st);
    kn_half *out = up(h, sizeof(uint16_t) * NH * HD);
    void *ws = up(h, kn_decode_attention_workspace(1, NH, HD) < sizeof(uint16_t) * cache
                         ? kn_decode_attention_workspace(1, NH, HD)
                         : sizeof(uint16_t) * cache);
    kn_decode_attention(out, qkv, dst, 0, 1, NH, NKV, HD, CTX, KN_KV_F16, 1, ws, 0);
    cudaDeviceSynchronize();
    long hz = emu_racecheck_hazards();
    printf("race_barrier: %ld shared-memory hazards reported (%s)\n", hz,
           expect_race ? "a barrier was removed: expected some" : "the real kernel: expected none");
    free(h);
    return expect_race ? hz > 0 ? 0 : 1 : hz == 0 ? 0 : 1;
}
