/* test_threads_split.c — decode's work splitter (host/threads.h) and the INT8 matrix-vector products it drives
 * (host/quant.c), with one segment (a queue) and one run per thread: every item is run exactly once whatever the
 * team size, one thread runs its segment in order and then takes over the others' front to back, and
 * qmat_matvec_multi, qmat_matmul and a whole INT8 decode give the same bits on 1, 2 and 3 threads, on odd row
 * counts (partial items, the 4-row kernel's row tail, masked column tails). */
#include <omp.h>

#include "host/engine.h"
#include "host/error.h"
#include "host/half.h"
#include "host/quant.h"
#include "host/threads.h"
#include "infer/quantize.h"
#include "tests/testutil.h"

/* items [0, n) in `plan` segments (1: the shared queue), run by a team of `team`: each item taken exactly once */
static void split_covers(int n, int plan, int team) {
    int *count = TU_NEW(int, n + 1);
    sc_split s;
    sc_split_init(&s, n, plan);
    int taken = 0;
#pragma omp parallel num_threads(team) reduction(+ : taken)
    for (int item, t = omp_get_thread_num(); (item = sc_split_next(&s, t)) >= 0; taken++) {
        if (item < n) {
#pragma omp atomic
            count[item]++;
        } else {
#pragma omp atomic
            count[n]++; /* out of range */
        }
    }
    int bad = count[n];
    for (int i = 0; i < n; i++) bad += count[i] != 1;
    char what[160];
    snprintf(what, sizeof what, "split of %d items in %d segments, team of %d: items not taken once", n, plan, team);
    tu_check(what, bad + abs(taken - n), 0);
    free(count);
}

/* one thread: its own segment front to back, then the following segments front to back, so a team of one runs
 * the items in order (one linear stream); thread 1 of 3 starts at its own segment and wraps around */
static void split_order(void) {
    sc_split s;
    sc_split_init(&s, 7, 2);
    int bad = 0;
    for (int i = 0; i < 7; i++) bad += sc_split_next(&s, 0) != i;
    bad += sc_split_next(&s, 0) != -1;
    tu_check("split order, thread 0 of 2 alone: items 0..6 in order", bad, 0);
    sc_split_init(&s, 9, 3);
    static const int want[9] = {3, 4, 5, 6, 7, 8, 0, 1, 2};
    bad = 0;
    for (int i = 0; i < 9; i++) bad += sc_split_next(&s, 1) != want[i];
    bad += sc_split_next(&s, 2) != -1;
    tu_check("split order, thread 1 of 3 alone: its segment, the next, then the first", bad, 0);
    sc_split_init(&s, 5, 1);
    bad = 0;
    for (int i = 0; i < 5; i++) bad += sc_split_next(&s, i % 3) != i;
    tu_check("one segment is a queue: threads 0, 1, 2 take items 0..4 in turn", bad, 0);
    sc_split_set_runs(1);
    bad = sc_split_segments(3) != 3;
    sc_split_set_runs(0);
    bad += sc_split_segments(3) != 1;
    sc_split_set_runs(-1);
    tu_check("sc_split_segments: runs give one segment per thread, the queue one", bad, 0);
    sc_split_init(&s, 0, 3);
    tu_check("split of no items: nothing to take", sc_split_next(&s, 1) != -1, 0);
}

/* qmat_matvec_multi of nm matrices on 1, 2, 3 threads and every kernel equals the scalar kernel on one thread,
 * bit for bit, and the exact (double) product; outputs start as NaN so a row no thread ran is seen */
static void matvec_threads(sc_rng *r, int nm, const int *rows, int cols, int group) {
    int ng = quant_ngroups(cols, group), total = 0;
    for (int i = 0; i < nm; i++) total += rows[i];
    float *w = tu_randn(r, (int64_t)total * cols, 0.05), *x = tu_randn(r, cols, 1.0);
    int8_t *q = TU_NEW(int8_t, (int64_t)total * cols);
    uint16_t *sc = TU_NEW(uint16_t, total * ng);
    quant_rows(w, total, cols, group, q, sc);
    sc_qmat m[QMULTI_MAX];
    const sc_qmat *mp[QMULTI_MAX];
    for (int i = 0, r0 = 0; i < nm; r0 += rows[i], i++) {
        m[i] = (sc_qmat){.rows = rows[i], .cols = cols, .group = group, .q = q + (size_t)r0 * cols, .scale = sc + r0 * ng};
        qmat_prepare(&m[i]);
        mp[i] = &m[i];
    }
    uint8_t *xq = TU_NEW(uint8_t, cols);
    float *xs = TU_NEW(float, ng), *ref = TU_NEW(float, total), *y = TU_NEW(float, total);
    act_quant(x, cols, group, xq, xs);
    float *yr[QMULTI_MAX], *yy[QMULTI_MAX];
    for (int i = 0, r0 = 0; i < nm; r0 += rows[i], i++) yr[i] = ref + r0, yy[i] = y + r0;
    const char *was = quant_kernel_name();
    omp_set_num_threads(1);
    tu_check("scalar kernel can be chosen", quant_set_kernel("scalar"), 0);
    qmat_matvec_multi(mp, nm, xq, xs, yr);
    double *exact = TU_NEW(double, total);
    int G = group > 0 && group < cols ? group : cols;
    for (int i = 0; i < total; i++)
        for (int c = 0; c < cols; c++)
            exact[i] += (double)q[(size_t)i * cols + c] * half_to_float(sc[(size_t)i * ng + c / G]) * ((int)xq[c] - 128) * xs[c / G];
    char what[200];
    snprintf(what, sizeof what, "%d matrices of %d..%d rows x %d, group %d: one scalar thread vs double (rel L2)", nm,
             rows[0], rows[nm - 1], cols, group);
    tu_check(what, tu_relerr(ref, exact, total), 1e-6);
    static const char *kernels[] = {"scalar", "avx512-vnni", "avx-vnni", "avx2"}; /* each with the queue and runs */
    for (int k = 0; k < 8; k++) {
        if (quant_set_kernel(kernels[k / 2])) continue; /* not on this CPU */
        sc_split_set_runs(k % 2);
        for (int nt = 1; nt <= 3; nt++) {
            omp_set_num_threads(nt);
            for (int i = 0; i < total; i++) y[i] = NAN;
            qmat_matvec_multi(mp, nm, xq, xs, yy);
            int diff = 0;
            for (int i = 0; i < total; i++) diff += memcmp(&y[i], &ref[i], sizeof(float)) != 0;
            snprintf(what, sizeof what, "%d matrices of %d..%d rows x %d, group %d, %s, %s, %d threads: outputs "
                     "differing from one scalar thread", nm, rows[0], rows[nm - 1], cols, group, kernels[k / 2],
                     k % 2 ? "runs" : "queue", nt);
            tu_check(what, diff, 0);
        }
    }
    quant_set_kernel(was);
    /* several tokens (verification, prefill): qmat_matmul's 16-row blocks on 1, 2, 3 threads, token 0 = the input
     * above, so its rows equal the one-token products */
    enum { T = 3 };
    uint8_t *xq3 = TU_NEW(uint8_t, T * cols);
    float *xs3 = TU_NEW(float, T * ng), *y3 = TU_NEW(float, T * rows[0]), *y3ref = TU_NEW(float, T * rows[0]);
    for (int t = 0; t < T; t++) {
        act_quant(x, cols, group, xq3 + t * cols, xs3 + t * ng);
        for (int c = 0; c < cols && t; c++) xq3[t * cols + c] ^= (uint8_t)(t * 37 + c); /* other tokens differ */
    }
    for (int k = 0; k < 6; k++) {
        int nt = k / 2 + 1;
        sc_split_set_runs(k % 2);
        omp_set_num_threads(nt);
        for (int i = 0; i < T * rows[0]; i++) y3[i] = NAN;
        qmat_matmul(&m[0], xq3, xs3, y3, T);
        if (nt == 1) memcpy(y3ref, y3, sizeof(float) * T * rows[0]);
        int diff = memcmp(y3, ref, sizeof(float) * rows[0]) != 0;
        for (int i = 0; i < T * rows[0]; i++) diff += memcmp(&y3[i], &y3ref[i], sizeof(float)) != 0;
        snprintf(what, sizeof what, "qmat_matmul %d tokens x %d rows x %d, group %d, %s, %d threads: outputs "
                 "differing from one thread (token 0: from the one-token product)", T, rows[0], cols, group,
                 k % 2 ? "runs" : "queue", nt);
        tu_check(what, diff, 0);
    }
    sc_split_set_runs(-1);
    free(xq3), free(xs3), free(y3), free(y3ref);
    for (int i = 0; i < nm; i++) qmat_free(&m[i]);
    free(w), free(x), free(q), free(sc), free(xq), free(xs), free(ref), free(y), free(exact);
}

/* greedy INT8 decode of a tiny random model on 1, 2 and 3 threads: the same tokens and the same logits, bit for bit,
 * with the queue and with runs */
static void decode_threads(int runs) {
    sc_split_set_runs(runs);
    sc_config cfg;
    config_preset(&cfg, "tiny");
    cfg.max_position_embeddings = 64;
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 77, 0.08f);
    char dir[] = "/tmp/sc_test_threads.XXXXXX", path[4200];
    if (!mkdtemp(dir)) exit(1);
    snprintf(path, sizeof path, "%s/int8", dir);
    if (quantize_model(&m, path, 0)) printf("quantize: %s\n", sc_error()), exit(1);
    sc_weights w;
    if (weights_load(&w, path)) printf("load int8: %s\n", sc_error()), exit(1);
    enum { N = 24 };
    int V = cfg.vocab_size;
    float *logits[3];
    int32_t toks[3][N];
    for (int nt = 1; nt <= 3; nt++) {
        sc_engine e;
        sc_engine_opts o = {.device = "cpu", .kv_type = SC_KV_F16, .threads = nt};
        if (engine_open(&e, &w, &o)) printf("engine_open: %s\n", sc_error()), exit(1);
        sc_kv kv;
        engine_kv_create(&e, &kv, 0);
        float *l = logits[nt - 1] = TU_NEW(float, (size_t)N * V);
        int32_t id = 1;
        for (int t = 0; t < N; t++) {
            if (engine_forward(&e, &kv, &id, 1, l + (size_t)t * V)) printf("forward: %s\n", sc_error()), exit(1);
            for (int v = 0; v < V; v++)
                if (l[(size_t)t * V + v] > l[(size_t)t * V + id] || v == 0) id = v;
            toks[nt - 1][t] = id;
        }
        kv_free(&kv);
        engine_close(&e);
    }
    for (int nt = 2; nt <= 3; nt++) {
        char what[120];
        snprintf(what, sizeof what, "INT8 greedy decode, %s, %d threads vs 1: differing tokens", runs ? "runs" : "queue",
                 nt);
        tu_check(what, memcmp(toks[nt - 1], toks[0], sizeof toks[0]) != 0, 0);
        snprintf(what, sizeof what, "INT8 greedy decode, %s, %d threads vs 1: logits not bit-identical",
                 runs ? "runs" : "queue", nt);
        tu_check(what, memcmp(logits[nt - 1], logits[0], (size_t)N * V * sizeof(float)) != 0, 0);
    }
    sc_split_set_runs(-1);
    for (int i = 0; i < 3; i++) free(logits[i]);
    weights_free(&w);
    model_free(&m);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) printf("could not remove %s\n", dir);
}

int main(void) {
    static const int ns[] = {0, 1, 2, 3, 5, 7, 64, 1001};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (int plan = 1; plan <= 3; plan++)
            for (int team = 1; team <= 4; team++) split_covers(ns[i], plan, team);
    split_covers(100, SC_SPLIT_MAX + 5, 3); /* more segments asked for than SC_SPLIT_MAX */
    split_order();
    sc_rng r;
    rng_seed(&r, 17);
    matvec_threads(&r, 3, (const int[]){133, 37, 37}, 1152, 0); /* q, k, v shaped: partial items, 4-row tails */
    matvec_threads(&r, 2, (const int[]){201, 201}, 200, 64);   /* gate, up: a partial last group, masked columns */
    matvec_threads(&r, 1, (const int[]){5}, 256, 128);         /* fewer items than threads */
    matvec_threads(&r, 1, (const int[]){1027}, 96, 0);
    decode_threads(0);
    decode_threads(1);
    return tu_finish("test_threads_split");
}
