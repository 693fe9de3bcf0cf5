/* test_gemm.c — the GEMM candidates and their selection (kernels/gemm*.cu, issue 12): every candidate (cuBLAS
 * GemmEx, staged SGEMM, the SIMT kernel and its paired-FP16 variant) against a double-precision reference for all
 * four transpose combinations, sizes that are not multiples of any tile, padded leading dimensions, misaligned
 * operands (no 16-byte loads), FP16 and FP32 C, beta = 0 (C holds NaN bytes: must not be read) and beta = 1. Then
 * the tuner under a fake timer (deterministic choice, ties), the per-GPU cache file (written, read instead of
 * measuring, ignored and rewritten when corrupt), SMALLCODER_GEMM (forcing; a bad value exits 1 with one line),
 * no measurement inside graph capture, and the tensor-core probe's decision (SMALLCODER_NO_TENSOR_CORES too). */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/gpu/gpu_test.h"

/* a condition as a check: prints "ok/FAIL test_gemm.c:LINE" with the condition */
#define TU_CHECK(cond) tu_check("test_gemm.c:" TU_STR(__LINE__) ": " #cond, (cond) ? 0.0 : 1.0, 0.0)
#define TU_STR(x) TU_STR2(x)
#define TU_STR2(x) #x

/* column-major op(X)(r, p) of a stored matrix */
static float at(const float *X, int ld, int trans, int r, int p) {
    return trans ? X[p + (int64_t)r * ld] : X[r + (int64_t)p * ld];
}

typedef struct {
    int m, n, k, pad, misalign;
} shape;

static double run_case(kn_blas *b, sc_rng *r, int algo, int ta, int tb, shape s, int c_fp32, float beta) {
    int lda = (ta ? s.k : s.m) + s.pad, ldb = (tb ? s.n : s.k) + s.pad, ldc = s.m + s.pad;
    int64_t na = (int64_t)lda * (ta ? s.m : s.k) + 1, nb = (int64_t)ldb * (tb ? s.k : s.n) + 1;
    int64_t nc = (int64_t)ldc * s.n;
    float *A = gt_randn_half(r, na, 1.0), *B = gt_randn_half(r, nb, 0.1), *C0 = gt_randn_half(r, nc, 1.0);
    const float alpha = 0.75f;
    /* reference in double from the operands as stored (misalign: the GEMM sees them one element later) */
    int off = s.misalign ? 1 : 0;
    float *ref = TU_NEW(float, nc);
    for (int j = 0; j < s.n; j++)
        for (int i = 0; i < ldc; i++) {
            int64_t c = i + (int64_t)j * ldc;
            if (i >= s.m) { /* padding rows stay as they were */
                ref[c] = C0[c];
                continue;
            }
            double acc = 0;
            for (int p = 0; p < s.k; p++) acc += (double)at(A + off, lda, ta, i, p) * at(B + off, ldb, tb, p, j);
            ref[c] = (float)(alpha * acc + (beta != 0.0f ? beta * (double)C0[c] : 0.0));
        }
    kn_half *dA = gt_up_half(A, na), *dB = gt_up_half(B, nb);
    void *dC;
    if (c_fp32) dC = gt_up_f32(C0, nc);
    else dC = gt_up_half(C0, nc);
    if (beta == 0.0f) { /* NaN bytes in the rows the GEMM writes: beta = 0 must not read them */
        for (int j = 0; j < s.n; j++)
            GT_CHECK(cudaMemset((char *)dC + (size_t)j * ldc * (c_fp32 ? 4 : 2), 0xff, (size_t)s.m * (c_fp32 ? 4 : 2)));
    }
    kn_blas_force(b, (kn_gemm_algo)algo);
    kn_gemm_cm(b, ta, tb, s.m, s.n, s.k, alpha, dA + off, lda, dB + off, ldb, beta, dC, c_fp32, ldc);
    float *got = TU_NEW(float, nc);
    if (c_fp32) gt_down_f32(got, dC, nc);
    else gt_down_half(got, dC, nc);
    double err = gt_relerr(got, ref, nc);
    GT_FREE(dA), GT_FREE(dB), GT_FREE(dC);
    free(A), free(B), free(C0), free(ref), free(got);
    return err;
}

static void candidates(kn_blas *b, sc_rng *r) {
    const shape shapes[] = {
        {1, 1, 1, 0, 0},      {37, 45, 19, 0, 0},  {130, 67, 129, 3, 0}, {64, 72, 48, 0, 0},
        {65, 200, 33, 0, 1},  {257, 300, 40, 8, 0}, /* 3x3 blocks of 128: the large tile, with edges */
    };
    const int algos[] = {KN_GEMM_CUBLAS, KN_GEMM_SGEMM, KN_GEMM_SIMT, KN_GEMM_SIMT_H2};
    for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int t = 0; t < 4; t++)
                for (int cf = 0; cf < 2; cf++)
                    for (int bi = 0; bi < 2; bi++) {
                        shape s = shapes[si];
                        int ta = t & 1, tb = t >> 1;
                        double err = run_case(b, r, algos[a], ta, tb, s, cf, bi ? 1.0f : 0.0f);
                        /* FP16 C: its own rounding (2^-12 relative); FP32 C: accumulation order only. The paired-FP16
                         * variant rounds every product and run sum to FP16: a looser bound that still catches a
                         * wrong index (that gives errors of order 1) */
                        double tol = algos[a] == KN_GEMM_SIMT_H2 ? 3e-2 : cf ? 1e-5 : 2e-3;
                        char name[160];
                        snprintf(name, sizeof name, "%s %c%c m=%d n=%d k=%d pad=%d%s C=%s beta=%d",
                                 kn_gemm_algo_name(algos[a]), ta ? 'T' : 'N', tb ? 'T' : 'N', s.m, s.n, s.k, s.pad,
                                 s.misalign ? " misaligned" : "", cf ? "f32" : "f16", bi);
                        tu_check(name, err, tol);
                    }
}

/* The error of the paired-FP16 variant against the FP32 one at model-like operands (docs/cuda.md cites these):
 * a forward projection (activations ~1, weights ~0.05, k = 1152) and a weight gradient (k = tokens, small
 * activation gradients as the loss scale leaves them, FP32 C). */
static void h2_accuracy(kn_blas *b, sc_rng *r) {
    struct {
        const char *what;
        int ta, tb, m, n, k, c_fp32;
        double sa, sb;
    } cases[] = {{"forward (qkv-like, k=1152)", 1, 0, 96, 64, 1152, 0, 0.05, 1.0},
                 {"weight gradient (k=512 tokens, dy ~ 1e-2)", 0, 1, 96, 64, 512, 1, 1.0, 1e-2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int m = cases[c].m, n = cases[c].n, k = cases[c].k, ta = cases[c].ta, tb = cases[c].tb;
        int lda = ta ? k : m, ldb = tb ? n : k;
        float *A = gt_randn_half(r, (int64_t)m * k, cases[c].sa), *B = gt_randn_half(r, (int64_t)k * n, cases[c].sb);
        float *ref = TU_NEW(float, (int64_t)m * n), *got = TU_NEW(float, (int64_t)m * n);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double acc = 0;
                for (int p = 0; p < k; p++) acc += (double)at(A, lda, ta, i, p) * at(B, ldb, tb, p, j);
                ref[i + (int64_t)j * m] = (float)acc;
            }
        kn_half *dA = gt_up_half(A, (int64_t)m * k), *dB = gt_up_half(B, (int64_t)k * n);
        void *dC = gt_alloc((size_t)m * n * 4);
        double e[2];
        for (int v = 0; v < 2; v++) {
            kn_blas_force(b, v ? KN_GEMM_SIMT_H2 : KN_GEMM_SIMT);
            kn_gemm_cm(b, ta, tb, m, n, k, 1.0f, dA, lda, dB, ldb, 0.0f, dC, cases[c].c_fp32, m);
            if (cases[c].c_fp32) gt_down_f32(got, dC, (int64_t)m * n);
            else gt_down_half(got, dC, (int64_t)m * n);
            e[v] = gt_relerr(got, ref, (int64_t)m * n);
        }
        printf("  paired FP16 accuracy, %s: simt %.2e, simt-h2 %.2e (relative L2 vs double)\n", cases[c].what, e[0],
               e[1]);
        GT_FREE(dA), GT_FREE(dB), GT_FREE(dC);
        free(A), free(B), free(ref), free(got);
    }
}

/* ---- selection ---- */
typedef struct {
    double ms[KN_GEMM_NALGO]; /* per candidate */
    double mma, hfma2;        /* probe */
    int calls, cublas_calls;
} fake;

static double fake_timer(void *ctx, const char *what) {
    fake *f = ctx;
    f->calls++;
    if (!strcmp(what, "probe mma")) return f->mma;
    if (!strcmp(what, "probe hfma2")) return f->hfma2;
    char algo[32];
    if (sscanf(what, "gemm %31s", algo) != 1 || kn_gemm_algo_parse(algo) < 1) {
        fprintf(stderr, "fake timer: unexpected '%s'\n", what);
        exit(1);
    }
    if (!strcmp(algo, "cublas")) f->cublas_calls++;
    return f->ms[kn_gemm_algo_parse(algo)];
}

static char g_cache[512];

static char *read_cache(void) {
    FILE *f = fopen(g_cache, "r");
    if (!f) return NULL;
    char *s = calloc(1, 1 << 16);
    size_t n = fread(s, 1, (1 << 16) - 1, f);
    s[n] = 0;
    fclose(f);
    return s;
}

static void selection(kn_blas *b, kn_half *dA, kn_half *dB) {
    fake f = {{0, 3.0, 2.0, 1.0, 0}, 1.0, 1.0, 0, 0};
    kn_set_fake_timer(fake_timer, &f);
    kn_gemm_cache_reset();
    kn_blas_force(b, KN_GEMM_AUTO);
    /* fastest wins; the same answer twice; then the cache answers without timing */
    TU_CHECK(kn_gemm_choice(b, 1, 0, 40, 24, 32, dA, 32, dB, 32, 0.0f, 0) == KN_GEMM_SIMT);
    int calls = f.calls;
    TU_CHECK(calls == 3);
    TU_CHECK(kn_gemm_choice(b, 1, 0, 40, 24, 32, dA, 32, dB, 32, 0.0f, 0) == KN_GEMM_SIMT && f.calls == calls);
    f.ms[KN_GEMM_SGEMM] = 0.5; /* a new key (beta = 1, FP32 C) is measured anew */
    TU_CHECK(kn_gemm_choice(b, 0, 1, 40, 24, 32, dA, 40, dB, 24, 1.0f, 1) == KN_GEMM_SGEMM);
    f.ms[KN_GEMM_CUBLAS] = f.ms[KN_GEMM_SGEMM] = f.ms[KN_GEMM_SIMT] = 2.0; /* a tie keeps the earlier candidate */
    TU_CHECK(kn_gemm_choice(b, 0, 0, 40, 24, 32, dA, 40, dB, 32, 0.0f, 0) == KN_GEMM_CUBLAS);

    /* the file: written with every choice; read (not measured) by a fresh process state */
    char *txt = read_cache();
    TU_CHECK(txt && !strncmp(txt, "smallcoder-gemm-cache 1\n", 24) && strstr(txt, "gemm TN 40 24 32 f16 b0 v1 simt ") &&
             strstr(txt, "gemm NT 40 24 32 f32 b1 v1 sgemm ") && strstr(txt, "gemm NN 40 24 32 f16 b0 v1 cublas "));
    free(txt);
    kn_gemm_cache_reset();
    f.ms[KN_GEMM_CUBLAS] = 0.1;
    calls = f.calls;
    TU_CHECK(kn_gemm_choice(b, 1, 0, 40, 24, 32, dA, 32, dB, 32, 0.0f, 0) == KN_GEMM_SIMT && f.calls == calls);

    /* corrupt: ignored whole, measured again, rewritten */
    FILE *w = fopen(g_cache, "w");
    fputs("smallcoder-gemm-cache 1\ngemm TN 40 24 32 f16 b0 v1 warp-drive 1 2 3\n", w);
    fclose(w);
    kn_gemm_cache_reset();
    TU_CHECK(kn_gemm_choice(b, 1, 0, 40, 24, 32, dA, 32, dB, 32, 0.0f, 0) == KN_GEMM_CUBLAS && f.calls == calls + 3);
    txt = read_cache();
    TU_CHECK(txt && !strstr(txt, "warp-drive") && strstr(txt, "gemm TN 40 24 32 f16 b0 v1 cublas "));
    free(txt);
    w = fopen(g_cache, "w");
    fputs("not a cache\n", w);
    fclose(w);
    kn_gemm_cache_reset();
    calls = f.calls;
    TU_CHECK(kn_gemm_choice(b, 1, 0, 40, 24, 32, dA, 32, dB, 32, 0.0f, 0) == KN_GEMM_CUBLAS && f.calls == calls + 3);

    /* inside a graph capture nothing is timed: the SIMT kernel, not cached */
    cudaStream_t s;
    GT_CHECK(cudaStreamCreate(&s));
    GT_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    calls = f.calls;
    TU_CHECK(kn_gemm_choice(b, 1, 0, 48, 24, 32, dA, 32, dB, 32, 0.0f, 0) == KN_GEMM_SIMT && f.calls == calls);
    cudaGraph_t g;
    GT_CHECK(cudaStreamEndCapture(s, &g));
    GT_CHECK(cudaGraphDestroy(g));
    GT_CHECK(cudaStreamDestroy(s));
    TU_CHECK(kn_gemm_choice(b, 1, 0, 48, 24, 32, dA, 32, dB, 32, 0.0f, 0) == KN_GEMM_CUBLAS && f.calls == calls + 3);

    /* the tensor-core probe: same flops both ways; tensor cores iff mma is >= 1.5x faster */
    remove(g_cache); /* the file remembers the probe too */
    kn_gemm_cache_reset();
    f.mma = 1.0, f.hfma2 = 4.0; /* a T4 or an A100 */
    TU_CHECK(kn_device_has_tensor_cores() == 1);
    remove(g_cache);
    kn_gemm_cache_reset();
    f.mma = 3.0, f.hfma2 = 2.0; /* a TU117: mma on the FP16 ALUs, slower */
    TU_CHECK(kn_device_has_tensor_cores() == 0);
    f.mma = 1.0; /* cached: not probed again */
    TU_CHECK(kn_device_has_tensor_cores() == 0);
    txt = read_cache();
    TU_CHECK(txt && strstr(txt, "\ntensor_cores 0\n"));
    free(txt);
    kn_gemm_cache_reset();
    TU_CHECK(kn_device_has_tensor_cores() == 0); /* read back from the file */

    /* SMALLCODER_NO_TENSOR_CORES=1: the attention FMA path, and GemmEx is not a candidate */
    setenv("SMALLCODER_NO_TENSOR_CORES", "1", 1);
    TU_CHECK(kn_tensor_cores() == 0);
    f.cublas_calls = 0;
    TU_CHECK(kn_gemm_choice(b, 1, 1, 40, 24, 32, dA, 32, dB, 24, 0.0f, 0) == KN_GEMM_SGEMM && f.cublas_calls == 0);
    unsetenv("SMALLCODER_NO_TENSOR_CORES");

    /* SMALLCODER_GEMM forces a candidate for every shape */
    setenv("SMALLCODER_GEMM", "sgemm", 1);
    kn_blas *forced = kn_blas_create(0, NULL, 0, NULL, 0);
    calls = f.calls;
    TU_CHECK(kn_gemm_choice(forced, 1, 0, 56, 24, 32, dA, 32, dB, 32, 0.0f, 0) == KN_GEMM_SGEMM && f.calls == calls);
    kn_blas_destroy(forced);
    setenv("SMALLCODER_GEMM", "auto", 1);
    forced = kn_blas_create(0, NULL, 0, NULL, 0);
    TU_CHECK(kn_gemm_choice(forced, 1, 0, 56, 24, 32, dA, 32, dB, 32, 0.0f, 0) == KN_GEMM_CUBLAS);
    kn_blas_destroy(forced);
    /* a bad value: one line on stderr, exit 1 (in a child process) */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SMALLCODER_GEMM", "tensor", 1);
        kn_blas_create(0, NULL, 0, NULL, 0);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    TU_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    unsetenv("SMALLCODER_GEMM");
    kn_set_fake_timer(NULL, NULL);
}

int main(void) {
    /* a private cache directory and a device UUID (the emulator has none unless SC_EMU_UUID gives one) */
    char dir[] = "/tmp/sc_test_gemm_XXXXXX";
    TU_CHECK(mkdtemp(dir) != NULL);
    setenv("XDG_CACHE_HOME", dir, 1);
    if (!getenv("SC_EMU_UUID")) setenv("SC_EMU_UUID", "5c0de12a0000400080000000000000aa", 1);
    unsetenv("SMALLCODER_GEMM");
    unsetenv("SMALLCODER_NO_TENSOR_CORES");
    gt_require_device("test_gemm");
    struct cudaDeviceProp p;
    GT_CHECK(cudaGetDeviceProperties(&p, 0));
    const unsigned char *u = (const unsigned char *)p.uuid.bytes;
    snprintf(g_cache, sizeof g_cache, "%s/smallcoder/gemm-GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x.txt", dir, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
             u[11], u[12], u[13], u[14], u[15]);
    sc_rng r;
    rng_seed(&r, 12);
    kn_blas *b = kn_blas_create(0, NULL, 0, NULL, 0);
    candidates(b, &r);
    h2_accuracy(b, &r);
    float *x = gt_randn_half(&r, 4096, 1.0);
    kn_half *dA = gt_up_half(x, 4096), *dB = gt_up_half(x, 4096);
    selection(b, dA, dB);
    GT_FREE(dA), GT_FREE(dB);
    free(x);
    kn_blas_destroy(b);
    remove(g_cache);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/smallcoder", dir);
    rmdir(sub);
    rmdir(dir);
    return tu_finish("test_gemm");
}
