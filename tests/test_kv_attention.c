/* test_kv_attention.c — host/kv_attention.c, the CPU engine's grouped attention over the KV cache, against the
 * straightforward loops of host/cpu/decode_attention.c on the same cached values read back as FP32
 * (kv_layer_f32), for every kernel this CPU runs (avx512, avx2, scalar), every --kv type, query heads per KV head
 * 1, 2, 4, 7 and 8, head_dim 64, 72 (padded kernels), 128 and 18 (not a multiple of 8: f16 and f32 only), and
 * lengths that end inside a chunk (odd, one position, several chunks, a prefill of more rows than a work item).
 * Each row of a batched call must also have exactly the bits of that row computed alone (speculative verification
 * relies on it), and two threads the bits of one. */
#include <omp.h>

#include "host/cpu/ops.h"
#include "host/kv_cache.h"
#include "tests/testutil.h"

/* pos0 + T positions: one decode row (lengths 1, 37, 71: inside the first, second and third chunk), prefills of
 * 11 rows from 45 (crossing a chunk and more rows than a work item) and of 33 from an empty cache */
static const int cases[][2] = {{0, 1}, {36, 1}, {70, 1}, {45, 11}, {0, 33}};
enum { NCASES = sizeof cases / sizeof cases[0], NKV = 2, NCTX = 96 };

/* threads 1: the checks against the reference; threads 2: the same call again on two threads, the same bits */
static void one(const char *kernel, int type, int G, int hd, int threads2, sc_rng *r) {
    int nh = G * NKV, row = NKV * hd, qrow = nh * hd;
    sc_kv kv;
    kv_create(&kv, 2, NCTX, NKV, hd, type);
    float *k = tu_randn(r, (int64_t)NCTX * row, 1.0), *v = tu_randn(r, (int64_t)NCTX * row, 1.0);
    float *q = tu_randn(r, (int64_t)NCTX * qrow, 1.0);
    float *kf = TU_NEW(float, NCTX * row), *vf = TU_NEW(float, NCTX * row);
    float *out = TU_NEW(float, NCTX * qrow), *alone = TU_NEW(float, qrow), *ref = TU_NEW(float, NCTX * qrow);
    double *refd = TU_NEW(double, NCTX * qrow);
    float *scratch = TU_NEW(float, kv_attention_scratch(nh, NKV, hd, 2)), *two = TU_NEW(float, NCTX * qrow);
    kv_store(&kv, 1, 0, NCTX, k, v); /* layer 1: the layer offset is part of what is tested */
    kv_layer_f32(&kv, 1, 0, NCTX, kf);
    kv_layer_f32(&kv, 1, 1, NCTX, vf);
    double worst = 0;
    int same = 1, same2 = 1;
    for (int c = 0; c < NCASES; c++) {
        int pos0 = cases[c][0], T = cases[c][1];
        const float *qr = q + (size_t)pos0 * qrow;
        decode_attention(ref, qr, kf, vf, T, pos0, nh, NKV, hd);
        omp_set_num_threads(1);
        kv_attention(&kv, 1, out, qr, T, pos0, nh, scratch);
        if (threads2) {
            omp_set_num_threads(2);
            kv_attention(&kv, 1, two, qr, T, pos0, nh, scratch);
            same2 &= memcmp(two, out, (size_t)T * qrow * sizeof(float)) == 0;
            omp_set_num_threads(1);
        }
        for (int i = 0; i < T * qrow; i++) refd[i] = ref[i];
        double e = tu_relerr(out, refd, (int64_t)T * qrow);
        worst = e > worst || e != e ? e : worst;
        for (int t = 0; t < T && T > 1; t++) {
            kv_attention(&kv, 1, alone, qr + (size_t)t * qrow, 1, pos0 + t, nh, scratch);
            same &= memcmp(alone, out + (size_t)t * qrow, (size_t)qrow * sizeof(float)) == 0;
        }
    }
    char what[160];
    snprintf(what, sizeof what, "%s, kv %s, %d heads per kv head, hd %d: = decode_attention", kernel,
             kv_type_names[type], G, hd);
    tu_check(what, worst, 1e-5);
    snprintf(what, sizeof what, "%s, kv %s, %d heads per kv head, hd %d: batched rows = single rows", kernel,
             kv_type_names[type], G, hd);
    tu_check(what, same ? 0.0 : 1.0, 0.0);
    if (threads2) {
        snprintf(what, sizeof what, "%s, kv %s, %d heads per kv head, hd %d: 2 threads = 1 thread", kernel,
                 kv_type_names[type], G, hd);
        tu_check(what, same2 ? 0.0 : 1.0, 0.0);
    }
    kv_free(&kv);
    free(k), free(v), free(q), free(kf), free(vf), free(out), free(alone), free(ref), free(refd), free(scratch), free(two);
}

int main(void) {
    static const char *const names[] = {"avx512", "avx2", "scalar"};
    static const int groups[] = {1, 2, 4, 7, 8}, hds[] = {64, 72, 128, 18};
    const char *best = kv_attention_kernel_name();
    sc_rng r;
    rng_seed(&r, 17);
    for (int ki = 0; ki < 3; ki++) {
        if (kv_attention_set_kernel(names[ki])) {
            printf("skip %s: this CPU does not run it\n", names[ki]);
            continue;
        }
        for (int type = 0; type < SC_KV_NTYPES; type++)
            for (int gi = 0; gi < 5; gi++)
                for (int hi = 0; hi < 4; hi++)
                    if (kv_type_check(type, hds[hi]) == 0)
                        one(names[ki], type, groups[gi], hds[hi], type == SC_KV_F16 && hi < 3 && gi % 2 == 0, &r);
    }
    tu_check("an unknown kernel name is refused", kv_attention_set_kernel("avx9000") == -1 ? 0.0 : 1.0, 0.0);
    kv_attention_set_kernel(best);
    return tu_finish("test_kv_attention");
}
