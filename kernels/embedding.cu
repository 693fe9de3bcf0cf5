// embedding.cu — token embedding gather and its deterministic scatter-add backward (host/cpu/embedding.c is the
// twin). The backward never has two threads add into one table row: the host sorts the token positions by id
// (stable, so each id's tokens stay in token order), and one block owns each distinct id, adding its tokens'
// gradients in token order, exactly as the CPU loop does. No atomics, same bits on every run.
#include <string.h>

#include "kernels/common.cuh"

__global__ void embedding_forward_kernel(__half *out, const int32_t *ids, const __half *table, int C) {
    int t = blockIdx.x;
    const __half *src = table + (int64_t)ids[t] * C;
    __half *dst = out + (int64_t)t * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dst[c] = src[c];
}

// plan = [pos (T) | start (T + 1) | id (T)]: segment s covers pos[start[s] .. start[s+1]) and belongs to id[s].
__global__ void embedding_backward_kernel(float *dtable, float scale, const __half *dout, const int32_t *plan, int T,
                                          int C) {
    const int32_t *pos = plan, *start = plan + T, *id = plan + 2 * T + 1;
    int s = blockIdx.x;
    int a = start[s], b = start[s + 1];
    float *row = dtable + (int64_t)id[s] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = row[c];
        for (int j = a; j < b; j++) acc += scale * h2f(dout[(int64_t)pos[j] * C + c]);
        row[c] = acc;
    }
}

extern "C" void kn_embedding_forward(kn_half *out, const int32_t *ids, const kn_half *table, int T, int C,
                                     cudaStream_t stream) {
    if (T <= 0 || C <= 0) return;
    embedding_forward_kernel<<<T, C >= 512 ? 256 : 128, 0, stream>>>((__half *)out, ids, (const __half *)table, C);
    KN_CHECK_LAUNCH();
}

// Sorts (id, position) pairs packed in 64 bits, so equal ids keep their position order; O(T log T) on the host,
// tiny next to the step it serves.
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

extern "C" int kn_embedding_plan(int32_t *plan, const int32_t *ids, int T, int V) {
    int32_t *pos = plan, *start = plan + T, *id = plan + 2 * T + 1;
    uint64_t *keys = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)(T > 0 ? T : 1));
    if (!keys) {
        fprintf(stderr, "kn_embedding_plan: out of memory\n");
        exit(1);
    }
    int n = 0;
    for (int t = 0; t < T; t++)
        if (ids[t] >= 0 && ids[t] < V) keys[n++] = (uint64_t)(uint32_t)ids[t] << 32 | (uint32_t)t;
    qsort(keys, (size_t)n, sizeof(uint64_t), cmp_u64);
    int nseg = 0;
    for (int j = 0; j < n; j++) {
        int32_t v = (int32_t)(keys[j] >> 32);
        pos[j] = (int32_t)(keys[j] & 0xffffffffu);
        if (j == 0 || v != id[nseg - 1]) {
            start[nseg] = j;
            id[nseg++] = v;
        }
    }
    start[nseg] = n;
    free(keys);
    return nseg;
}

extern "C" void kn_embedding_backward(float *dtable_acc, float scale, const kn_half *dout, const int32_t *plan,
                                      int nids, int T, int C, cudaStream_t stream) {
    if (nids <= 0 || C <= 0) return;
    embedding_backward_kernel<<<nids, C >= 512 ? 256 : 128, 0, stream>>>(dtable_acc, scale, (const __half *)dout,
                                                                        plan, T, C);
    KN_CHECK_LAUNCH();
}
