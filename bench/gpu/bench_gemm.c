/* bench_gemm.c — the GEMM table of bench/gpu/gemm-table (issue 12): for every GEMM shape of 304m training at
 * --T tokens (forward, dX, dW with beta = 1, the classifier's logits / dx / dW chunk), the time of each candidate
 * (cuBLAS GemmEx FP16, staged SGEMM with its conversions, our SIMT kernel, its paired-FP16 variant) and of plain
 * cuBLAS SGEMM on FP32 operands (the reference the SIMT goal is stated against: >= 0.9x), its TFLOP/s and its speed
 * relative to plain SGEMM; then what the tuner picks, with and without tensor cores (SMALLCODER_NO_TENSOR_CORES=1
 * leaves GemmEx out). Markdown on stdout. Times are cudaEvent averages over --reps runs after one warm-up; on the
 * emulator (emu_sc_bench_gemm) they mean nothing and only rehearse the code.
 * Usage: sc_bench_gemm [--T N] [--reps N] [--vocab V] [--chunk N] [--hidden C --ffn F --qkv Q] */
#include <cublas_v2.h>
#include <glob.h>
#include <unistd.h>

#include "tests/gpu/gpu_test.h"

typedef struct {
    const char *name;
    int ta, tb, m, n, k, ldb, c_fp32;
    float beta;
} gshape;

static float g_ms;
static cudaEvent_t g_e0, g_e1;

static void tick(void) { GT_CHECK(cudaEventRecord(g_e0, 0)); }
static float tock(int reps) {
    GT_CHECK(cudaEventRecord(g_e1, 0));
    GT_CHECK(cudaEventSynchronize(g_e1));
    GT_CHECK(cudaEventElapsedTime(&g_ms, g_e0, g_e1));
    return g_ms / (float)reps;
}

/* forget every choice, in this process and in the private cache directory: each choice below is measured */
static void fresh_cache(const char *dir) {
    char pat[600];
    snprintf(pat, sizeof pat, "%s/smallcoder/gemm-*.txt", dir);
    glob_t g;
    if (glob(pat, 0, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++) unlink(g.gl_pathv[i]);
    globfree(&g);
    kn_gemm_cache_reset();
}

static int arg(int argc, char **argv, const char *name, int def) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return atoi(argv[i + 1]);
    return def;
}

int main(int argc, char **argv) {
    int T = arg(argc, argv, "--T", 2048), reps = arg(argc, argv, "--reps", 10), V = arg(argc, argv, "--vocab", 32768);
    int C = arg(argc, argv, "--hidden", 1152), F = arg(argc, argv, "--ffn", 3328), QKV = arg(argc, argv, "--qkv", 1728);
    int chunk = arg(argc, argv, "--chunk", (int)((16u << 20) / (4u * (unsigned)V)));
    if (T < 1 || reps < 1 || V < 1 || C < 1 || F < 1 || QKV < 1 || chunk < 1) {
        fprintf(stderr, "bench_gemm: every size must be positive\n");
        return 2;
    }
    if (chunk > T) chunk = T;
    /* the tuner's choices go to a private cache: the table measures, it does not reuse earlier answers */
    char dir[] = "/tmp/sc_bench_gemm_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    setenv("XDG_CACHE_HOME", dir, 1);
    unsetenv("SMALLCODER_GEMM");
    gt_require_device("bench_gemm");
    const gshape shapes[] = {
        {"fwd qkv", 1, 0, QKV, T, C, C, 0, 0.0f},      {"fwd o", 1, 0, C, T, C, C, 0, 0.0f},
        {"fwd gate|up", 1, 0, 2 * F, T, C, C, 0, 0.0f}, {"fwd down", 1, 0, C, T, F, F, 0, 0.0f},
        {"dX qkv", 0, 0, C, T, QKV, QKV, 0, 0.0f},      {"dX o", 0, 0, C, T, C, C, 0, 0.0f},
        {"dX gate|up", 0, 0, C, T, 2 * F, 2 * F, 0, 0.0f}, {"dX down", 0, 0, F, T, C, C, 0, 0.0f},
        {"dW qkv", 0, 1, C, QKV, T, QKV, 1, 1.0f},      {"dW o", 0, 1, C, C, T, C, 1, 1.0f},
        {"dW gate|up", 0, 1, C, 2 * F, T, 2 * F, 1, 1.0f}, {"dW down", 0, 1, F, C, T, C, 1, 1.0f},
        {"cls logits", 1, 0, V, chunk, C, C, 1, 0.0f}, {"cls dx", 0, 0, C, chunk, V, 2 * V, 0, 0.0f},
        {"cls dW", 0, 1, C, V, chunk, 2 * V, 1, 1.0f},
    };
    const int ns = (int)(sizeof shapes / sizeof shapes[0]);
    size_t maxa = 0, maxb = 0, maxc = 0;
    for (int i = 0; i < ns; i++) {
        const gshape *s = &shapes[i];
        size_t a = (size_t)s->m * s->k, b = (size_t)s->ldb * (s->tb ? s->k : s->n), c = (size_t)s->m * s->n;
        maxa = a > maxa ? a : maxa, maxb = b > maxb ? b : maxb, maxc = c > maxc ? c : maxc;
    }
    sc_rng r;
    rng_seed(&r, 7);
    float *ha = gt_randn_half(&r, (int64_t)maxa, 0.05), *hb = gt_randn_half(&r, (int64_t)maxb, 1.0);
    kn_half *A = gt_up_half(ha, (int64_t)maxa), *B = gt_up_half(hb, (int64_t)maxb);
    float *A32 = gt_up_f32(ha, (int64_t)maxa), *B32 = gt_up_f32(hb, (int64_t)maxb);
    void *Cb = gt_alloc(maxc * 4);
    GT_CHECK(cudaMemset(Cb, 0, maxc * 4));
    free(ha), free(hb);
    kn_blas *b = kn_blas_create(0, NULL, 0, NULL, 0);
    cublasHandle_t h;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "bench_gemm: cublasCreate failed\n");
        return 1;
    }
    GT_CHECK(cudaEventCreate(&g_e0));
    GT_CHECK(cudaEventCreate(&g_e1));
    struct cudaDeviceProp p;
    GT_CHECK(cudaGetDeviceProperties(&p, 0));
    printf("## GEMM candidates, 304m training shapes at T = %d (%s, sm_%d%d, tensor cores by probe: %s)\n\n", T, p.name,
           p.major, p.minor, kn_device_has_tensor_cores() ? "yes" : "no");
    printf("ms per GEMM (average of %d after a warm-up), TFLOP/s, and speed relative to plain cuBLAS SGEMM on FP32 "
           "operands (`x` > 1 is faster). sgemm = the staged candidate, conversions included.\n\n", reps);
    printf("| shape | op | m | n | k | C | sgemm-f32 | cublas | sgemm | simt | simt-h2 | auto | auto, no TC |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    const int algos[] = {KN_GEMM_CUBLAS, KN_GEMM_SGEMM, KN_GEMM_SIMT, KN_GEMM_SIMT_H2};
    double sum_simt = 0, sum_ref = 0;
    for (int i = 0; i < ns; i++) {
        const gshape *s = &shapes[i];
        int lda = s->ta ? s->k : s->m;
        double flops = 2.0 * s->m * s->n * s->k;
        const float one = 1.0f;
        /* plain SGEMM: FP32 A and B, FP32 C (the reference) */
        cublasSgemm(h, s->ta ? CUBLAS_OP_T : CUBLAS_OP_N, s->tb ? CUBLAS_OP_T : CUBLAS_OP_N, s->m, s->n, s->k, &one, A32,
                    lda, B32, s->ldb, &s->beta, (float *)Cb, s->m);
        tick();
        for (int rep = 0; rep < reps; rep++)
            cublasSgemm(h, s->ta ? CUBLAS_OP_T : CUBLAS_OP_N, s->tb ? CUBLAS_OP_T : CUBLAS_OP_N, s->m, s->n, s->k, &one,
                        A32, lda, B32, s->ldb, &s->beta, (float *)Cb, s->m);
        float ref = tock(reps);
        printf("| %s | %c%c | %d | %d | %d | %s | %.3f ms %.2f TF |", s->name, s->ta ? 'T' : 'N', s->tb ? 'T' : 'N',
               s->m, s->n, s->k, s->c_fp32 ? "f32" : "f16", ref, flops / ref * 1e-9);
        for (int a = 0; a < 4; a++) {
            kn_blas_force(b, (kn_gemm_algo)algos[a]);
            kn_gemm_cm(b, s->ta, s->tb, s->m, s->n, s->k, 1.0f, A, lda, B, s->ldb, s->beta, Cb, s->c_fp32, s->m);
            tick();
            for (int rep = 0; rep < reps; rep++)
                kn_gemm_cm(b, s->ta, s->tb, s->m, s->n, s->k, 1.0f, A, lda, B, s->ldb, s->beta, Cb, s->c_fp32, s->m);
            float ms = tock(reps);
            printf(" %.3f ms %.2f TF %.2fx |", ms, flops / ms * 1e-9, ref / ms);
            if (algos[a] == KN_GEMM_SIMT) sum_simt += ms, sum_ref += ref;
        }
        kn_blas_force(b, KN_GEMM_AUTO);
        fresh_cache(dir);
        kn_gemm_algo pick = kn_gemm_choice(b, s->ta, s->tb, s->m, s->n, s->k, A, lda, B, s->ldb, s->beta, s->c_fp32);
        setenv("SMALLCODER_NO_TENSOR_CORES", "1", 1);
        fresh_cache(dir);
        kn_gemm_algo pick_ntc = kn_gemm_choice(b, s->ta, s->tb, s->m, s->n, s->k, A, lda, B, s->ldb, s->beta, s->c_fp32);
        unsetenv("SMALLCODER_NO_TENSOR_CORES");
        printf(" %s | %s |\n", kn_gemm_algo_name(pick), kn_gemm_algo_name(pick_ntc));
        fflush(stdout);
    }
    printf("\nSIMT over all shapes: %.3f ms vs plain SGEMM %.3f ms: %.2fx SGEMM's speed (goal >= 0.9x)\n", sum_simt,
           sum_ref, sum_simt > 0 ? sum_ref / sum_simt : 0.0);
    cublasDestroy(h);
    kn_blas_destroy(b);
    GT_FREE(A), GT_FREE(B), GT_FREE(A32), GT_FREE(B32), GT_FREE(Cb);
    fresh_cache(dir);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/smallcoder", dir);
    rmdir(sub);
    rmdir(dir);
    return 0;
}
