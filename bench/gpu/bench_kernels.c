/* bench_kernels.c — the timing driver of bench/gpu-suite: every CUDA kernel of kernels/ forward and backward at
 * the 304m shapes (hidden 1152, 16 heads / 4 KV heads of 72, FFN 3328, vocab 32768), both attention paths, and
 * cuBLAS GEMMs in several precision modes. Decode attention (split-K flash-decoding) over 4096 cached positions in
 * all 18 layers (one token's attention, as the decode step runs it) and over 131072 positions in one layer (past
 * any L2 cache): GB/s = K and V bytes read / time, against the memory peak. Prints one JSON object per line
 * (device facts first), which bench/gpu/report.py joins with the PyTorch timings of bench/gpu/torch_kernels.py.
 * Usage: sc_bench_kernels [--T 2048,4096] [--reps N] [--no-gemm]. Times: median of N runs (CUDA events) after 3 warm-ups. */
#include <cublas_v2.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

enum { C_ = 1152, NH = 16, NKV = 4, HD = 72, F_ = 3328, V_ = 32768, CHUNK = 128 };

#define BK_CUBLAS(call)                                                                                            \
    do {                                                                                                           \
        cublasStatus_t st_ = (call);                                                                               \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                                        \
            fprintf(stderr, "%s:%d: cuBLAS error %d in %s\n", __FILE__, __LINE__, (int)st_, #call);                 \
            exit(1);                                                                                               \
        }                                                                                                          \
    } while (0)

typedef struct {
    int T, op, tc;
    kn_blas *blas;
    cublasHandle_t h;
    /* buffers sized for the largest T */
    kn_half *x, *delta, *xo, *xn, *w, *qkv, *dqkv, *att, *datt, *gu, *dgu, *act, *dact, *emb, *dx;
    float *rstd, *lse, *dw, *losses, *dW, *inv_freq;
    int32_t *ids, *plan;
    int nids;
    void *ws;
    /* decode attention: da_layers layers of a [da_ctx][NKV*HD] cache, position da_ctx - 1 */
    kn_kv_step *da_step;
    kn_half *da_out;
    void *da_ws;
    int da_layers, da_ctx;
    /* GEMM mode runs */
    int gm, gn, gk, gmode;
    void *ga, *gb, *gc;
} bench;

enum {
    OP_RMS_FWD, OP_RMS_BWD, OP_ROPE_FWD, OP_ROPE_BWD, OP_ATT_FWD, OP_ATT_BWD, OP_SWI_FWD, OP_SWI_BWD, OP_CLS_FWD,
    OP_CLS_FWDBWD, OP_EMB_FWD, OP_EMB_BWD, OP_DECODE, OP_GEMM
};

static void run_gemm(bench *b) {
    float one = 1.0f, zero = 0.0f;
    uint16_t h1 = float_to_half(1.0f), h0 = float_to_half(0.0f);
    int m = b->gm, n = b->gn, k = b->gk;
    switch (b->gmode) {
    case 0: /* ours: FP16 in and out, FP32 accumulate */
        BK_CUBLAS(cublasGemmEx(b->h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, b->ga, CUDA_R_16F, k, b->gb, CUDA_R_16F,
                               k, &zero, b->gc, CUDA_R_16F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        break;
    case 1: /* FP16 in, FP32 out (the weight-gradient GEMMs) */
        BK_CUBLAS(cublasGemmEx(b->h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, b->ga, CUDA_R_16F, k, b->gb, CUDA_R_16F,
                               k, &zero, b->gc, CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        break;
    case 2: /* FP16 accumulate: faster on some parts, not accurate enough for training sums */
        BK_CUBLAS(cublasGemmEx(b->h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &h1, b->ga, CUDA_R_16F, k, b->gb, CUDA_R_16F,
                               k, &h0, b->gc, CUDA_R_16F, m, CUBLAS_COMPUTE_16F, CUBLAS_GEMM_DEFAULT));
        break;
    case 3: /* FP32 SGEMM */
        BK_CUBLAS(cublasGemmEx(b->h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, b->ga, CUDA_R_32F, k, b->gb, CUDA_R_32F,
                               k, &zero, b->gc, CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        break;
    default: /* TF32 tensor cores on FP32 data */
        BK_CUBLAS(cublasGemmEx(b->h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, b->ga, CUDA_R_32F, k, b->gb, CUDA_R_32F,
                               k, &zero, b->gc, CUDA_R_32F, m, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
        break;
    }
}

static void run_op(bench *b) {
    int T = b->T, Q = NH * HD, KV = NKV * HD, QKV = Q + 2 * KV;
    switch (b->op) {
    case OP_RMS_FWD: kn_rmsnorm_forward(b->xo, b->xn, b->rstd, b->x, b->delta, b->w, T, C_, 1e-5f, 0); break;
    case OP_RMS_BWD:
        kn_rmsnorm_backward(b->dx, b->dw, 1.0f, b->xn, b->delta, b->xo, b->rstd, b->w, T, C_, b->ws, 0);
        break;
    case OP_ROPE_FWD: kn_rope_forward(b->qkv, b->inv_freq, T, NH + NKV, HD, QKV, 0, NULL, 0); break;
    case OP_ROPE_BWD: kn_rope_backward(b->dqkv, b->inv_freq, T, NH + NKV, HD, QKV, 0, NULL, 0); break;
    case OP_ATT_FWD:
        kn_set_tensor_cores(b->tc);
        kn_attention_forward(b->att, b->lse, b->qkv, b->qkv + Q, b->qkv + Q + KV, T, NH, NKV, HD, QKV, QKV, 0);
        break;
    case OP_ATT_BWD:
        kn_set_tensor_cores(b->tc);
        kn_attention_backward(b->dqkv, b->dqkv + Q, b->dqkv + Q + KV, b->datt, b->qkv, b->qkv + Q, b->qkv + Q + KV,
                              b->att, b->lse, T, NH, NKV, HD, QKV, QKV, b->ws, 0);
        break;
    case OP_SWI_FWD: kn_swiglu_forward(b->act, b->gu, b->gu + F_, T, F_, 2 * F_, 0); break;
    case OP_SWI_BWD: kn_swiglu_backward(b->dgu, b->dgu + F_, b->dact, b->gu, b->gu + F_, T, F_, 2 * F_, 0); break;
    case OP_CLS_FWD:
        kn_classifier_forward_backward(b->blas, b->losses, NULL, NULL, NULL, 1.0f, b->xn, b->emb, b->ids, T, C_, V_,
                                       1.0f, CHUNK, b->ws, 0);
        break;
    case OP_CLS_FWDBWD:
        kn_classifier_forward_backward(b->blas, b->losses, NULL, b->dx, b->dW, 1.0f / T, b->xn, b->emb, b->ids, T, C_,
                                       V_, 32.0f, CHUNK, b->ws, 0);
        break;
    case OP_EMB_FWD: kn_embedding_forward(b->x, b->ids, b->emb, T, C_, 0); break;
    case OP_EMB_BWD: kn_embedding_backward(b->dW, 1.0f, b->dx, b->plan, b->nids, T, C_, 0); break;
    case OP_DECODE:
        for (int l = 0; l < b->da_layers; l++)
            kn_decode_attention(b->da_out, b->qkv, b->da_step, l, 1, NH, NKV, HD, b->da_ctx, KN_KV_F16, 1, b->da_ws, 0);
        break;
    default: run_gemm(b); break;
    }
}

static double time_ms(bench *b, int reps) {
    cudaEvent_t e0, e1;
    GT_CHECK(cudaEventCreate(&e0));
    GT_CHECK(cudaEventCreate(&e1));
    for (int i = 0; i < 3; i++) run_op(b);
    double *t = TU_NEW(double, reps);
    for (int i = 0; i < reps; i++) {
        GT_CHECK(cudaEventRecord(e0, 0));
        run_op(b);
        GT_CHECK(cudaEventRecord(e1, 0));
        GT_CHECK(cudaEventSynchronize(e1));
        float ms = 0;
        GT_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        t[i] = ms;
    }
    for (int i = 1; i < reps; i++) /* insertion sort: reps is small */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1], t[j - 1] = x;
        }
    double med = t[reps / 2];
    free(t);
    GT_CHECK(cudaEventDestroy(e0));
    GT_CHECK(cudaEventDestroy(e1));
    return med;
}

static void emit(const char *op, const char *dir, const char *path, int T, double ms, double bytes, double flops) {
    printf("{\"op\": \"%s\", \"dir\": \"%s\", \"path\": \"%s\", \"T\": %d, \"ms\": %.5f, \"gbs\": %.1f, \"tflops\": %.2f}\n",
           op, dir, path, T, ms, bytes / (ms * 1e6), flops / (ms * 1e9));
    fflush(stdout);
}

/* random FP16 device data (inputs must be finite for meaningful timings) */
static kn_half *rand_half(sc_rng *r, int64_t n, double scale) {
    float *h = tu_randn(r, n, scale);
    kn_half *d = gt_up_half(h, n);
    free(h);
    return d;
}

int main(int argc, char **argv) {
    int Ts[8] = {2048, 4096}, nT = 2, reps = 20, gemm = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--T") && i + 1 < argc) {
            nT = 0;
            for (char *s = strtok(argv[++i], ","); s && nT < 8; s = strtok(NULL, ",")) Ts[nT++] = atoi(s);
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--no-gemm")) {
            gemm = 0;
        } else {
            fprintf(stderr, "usage: sc_bench_kernels [--T 2048,4096] [--reps N] [--no-gemm]\n");
            return 2;
        }
    }
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        fprintf(stderr, "sc_bench_kernels: no CUDA device\n");
        return 77;
    }
    struct cudaDeviceProp p;
    GT_CHECK(cudaGetDeviceProperties(&p, 0));
    int memclk = 0, sm_clk = 0;
    GT_CHECK(cudaDeviceGetAttribute(&memclk, cudaDevAttrMemoryClockRate, 0));
    GT_CHECK(cudaDeviceGetAttribute(&sm_clk, cudaDevAttrClockRate, 0));
    double peak_gbs = 2.0 * memclk * 1e3 * (p.memoryBusWidth / 8) / 1e9; /* double data rate */
    printf("{\"device\": \"%s\", \"sm\": %d%d, \"sms\": %d, \"mem_gib\": %.1f, \"peak_gbs\": %.0f, \"sm_clock_mhz\": %d, "
           "\"tensor_cores\": %d}\n",
           p.name, p.major, p.minor, p.multiProcessorCount, p.totalGlobalMem / 1073741824.0, peak_gbs, sm_clk / 1000,
           kn_device_has_tensor_cores());

    int maxT = 0;
    for (int i = 0; i < nT; i++) maxT = Ts[i] > maxT ? Ts[i] : maxT;
    int64_t T = maxT, Q = NH * HD, KV = NKV * HD, QKV = Q + 2 * KV;
    sc_rng r;
    rng_seed(&r, 5);
    bench b;
    memset(&b, 0, sizeof b);
    size_t ws = kn_classifier_workspace(CHUNK, V_);
    if (kn_attention_backward_workspace(maxT, NH) > ws) ws = kn_attention_backward_workspace(maxT, NH);
    if (kn_rmsnorm_backward_workspace(maxT, C_) > ws) ws = kn_rmsnorm_backward_workspace(maxT, C_);
    void *blas_ws = gt_alloc((size_t)32 << 20);
    b.blas = kn_blas_create(0, blas_ws, (size_t)32 << 20, NULL, 0);
    BK_CUBLAS(cublasCreate(&b.h));
    b.ws = gt_alloc(ws);
    b.x = rand_half(&r, T * C_, 1.0), b.delta = rand_half(&r, T * C_, 1.0), b.xo = rand_half(&r, T * C_, 1.0);
    b.xn = rand_half(&r, T * C_, 1.0), b.w = rand_half(&r, C_, 1.0), b.dx = rand_half(&r, T * C_, 1.0);
    b.qkv = rand_half(&r, T * QKV, 1.0), b.dqkv = rand_half(&r, T * QKV, 1.0);
    b.att = rand_half(&r, T * Q, 1.0), b.datt = rand_half(&r, T * Q, 1.0);
    b.gu = rand_half(&r, T * 2 * F_, 1.0), b.dgu = rand_half(&r, T * 2 * F_, 1.0);
    b.act = rand_half(&r, T * F_, 1.0), b.dact = rand_half(&r, T * F_, 1.0), b.emb = rand_half(&r, (int64_t)V_ * C_, 0.02);
    b.rstd = gt_alloc(sizeof(float) * T), b.lse = gt_alloc(sizeof(float) * T * NH), b.losses = gt_alloc(sizeof(float) * T);
    b.dw = gt_alloc(sizeof(float) * C_), b.dW = gt_alloc(sizeof(float) * (size_t)V_ * C_);
    float inv[HD / 2];
    rope_inv_freq(inv, HD, 10000.0f);
    b.inv_freq = gt_up_f32(inv, HD / 2);
    GT_CHECK(cudaMemset(b.dw, 0, sizeof(float) * C_));
    GT_CHECK(cudaMemset(b.dW, 0, sizeof(float) * (size_t)V_ * C_));
    int32_t *ids = TU_NEW(int32_t, T), *plan = TU_NEW(int32_t, kn_embedding_plan_ints(maxT));
    for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)rng_below(&r, V_);
    b.ids = gt_up_i32(ids, T);
    b.plan = gt_alloc(sizeof(int32_t) * kn_embedding_plan_ints(maxT));

    for (int i = 0; i < nT; i++) {
        int t = Ts[i];
        b.T = t;
        b.nids = kn_embedding_plan(plan, ids, t, V_);
        GT_CHECK(cudaMemcpy(b.plan, plan, sizeof(int32_t) * kn_embedding_plan_ints(t), cudaMemcpyHostToDevice));
        double tc2 = (double)t * C_ * 2; /* bytes of one [T, C] FP16 tensor */
        /* attention state for the backward: a real forward first, so lse is consistent */
        b.tc = kn_device_has_tensor_cores();
        b.op = OP_ATT_FWD;
        run_op(&b);
        struct {
            int op;
            const char *name, *dir;
            double bytes, flops;
        } ops[] = {
            {OP_RMS_FWD, "rmsnorm", "fwd", 4 * tc2, 0},
            {OP_RMS_BWD, "rmsnorm", "bwd", 5 * tc2, 0},
            {OP_ROPE_FWD, "rope", "fwd", 2.0 * t * (Q + KV) * 2, 0},
            {OP_ROPE_BWD, "rope", "bwd", 2.0 * t * (Q + KV) * 2, 0},
            {OP_SWI_FWD, "swiglu", "fwd", 3.0 * t * F_ * 2, 0},
            {OP_SWI_BWD, "swiglu", "bwd", 5.0 * t * F_ * 2, 0},
            {OP_EMB_FWD, "embedding", "fwd", 2 * tc2, 0},
            {OP_EMB_BWD, "embedding", "bwd", tc2 + 2.0 * t * C_ * 4, 0},
            {OP_CLS_FWD, "classifier", "fwd", (double)V_ * C_ * 2, 2.0 * t * V_ * C_},
            {OP_CLS_FWDBWD, "classifier", "fwd+bwd", (double)V_ * C_ * 6, 6.0 * t * V_ * C_},
        };
        for (size_t j = 0; j < sizeof ops / sizeof ops[0]; j++) {
            b.op = ops[j].op;
            emit(ops[j].name, ops[j].dir, "-", t, time_ms(&b, reps), ops[j].bytes, ops[j].flops);
        }
        /* causal attention: fwd = 2 matmuls over T^2/2 scores, bwd = 5 (what FlashAttention counts) */
        double att_fwd_flops = 4.0 * t * (t / 2.0) * HD * NH, att_bwd_flops = 2.5 * att_fwd_flops;
        for (int tc = kn_device_has_tensor_cores(); tc >= 0; tc--) {
            b.tc = tc;
            b.op = OP_ATT_FWD;
            double f = time_ms(&b, reps);
            emit("attention", "fwd", tc ? "tc" : "fma", t, f, 0, att_fwd_flops);
            b.op = OP_ATT_BWD;
            double bw = time_ms(&b, reps);
            emit("attention", "bwd", tc ? "tc" : "fma", t, bw, 0, att_bwd_flops);
        }
        kn_set_tensor_cores(-1);
    }

    /* decode attention: one token over a full cache (the bytes that must come from memory: K and V) */
    const int da_cfg[][2] = {{18, 4096}, {1, 131072}};
    for (size_t i = 0; i < sizeof da_cfg / sizeof da_cfg[0]; i++) {
        b.da_layers = da_cfg[i][0], b.da_ctx = da_cfg[i][1];
        int64_t cache = (int64_t)b.da_layers * b.da_ctx * NKV * HD;
        kn_half *k = rand_half(&r, cache, 1.0), *v = rand_half(&r, cache, 1.0);
        kn_kv_step st = {.pos = b.da_ctx - 1, .n_ctx = b.da_ctx, .k = k, .v = v};
        b.da_step = gt_alloc(sizeof st);
        GT_CHECK(cudaMemcpy(b.da_step, &st, sizeof st, cudaMemcpyHostToDevice));
        b.da_out = gt_alloc(sizeof(kn_half) * NH * HD);
        b.da_ws = gt_alloc(kn_decode_attention_workspace(1, NH, HD));
        b.op = OP_DECODE;
        char path[32];
        snprintf(path, sizeof path, "%d layer%s", b.da_layers, b.da_layers > 1 ? "s" : "");
        emit("decode_attention", "fwd", path, b.da_ctx, time_ms(&b, reps), 2.0 * cache * 2, 0);
        GT_FREE(k), GT_FREE(v), GT_FREE(b.da_step), GT_FREE(b.da_out), GT_FREE(b.da_ws);
    }

    /* GEMM precision modes at the model's projection shapes (m = out features, n = tokens, k = in features) */
    int shapes[][3] = {{(int)QKV, 4096, C_}, {2 * F_, 4096, C_}, {C_, 4096, F_}, {V_, CHUNK, C_}, {8192, 8192, 8192}};
    const char *modes[] = {"f16 in, f32 accumulate, f16 out (used)", "f16 in, f32 accumulate, f32 out (dW)",
                           "f16 in, f16 accumulate", "f32 sgemm", "tf32 tensor cores"};
    size_t big = gemm ? (size_t)8192 * 8192 * 4 : 4;
    b.ga = gt_alloc(big), b.gb = gt_alloc(big), b.gc = gt_alloc(big);
    GT_CHECK(cudaMemset(b.ga, 0x11, big)); /* small finite values in both FP16 and FP32 */
    GT_CHECK(cudaMemset(b.gb, 0x11, big));
    b.op = OP_GEMM;
    for (size_t s = 0; gemm && s < sizeof shapes / sizeof shapes[0]; s++)
        for (int mode = 0; mode < 5; mode++) {
            b.gm = shapes[s][0], b.gn = shapes[s][1], b.gk = shapes[s][2], b.gmode = mode;
            double ms = time_ms(&b, reps < 10 ? reps : 10);
            printf("{\"op\": \"gemm\", \"mode\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"ms\": %.5f, \"tflops\": %.2f}\n",
                   modes[mode], b.gm, b.gn, b.gk, ms, 2.0 * b.gm * b.gn * b.gk / (ms * 1e9));
            fflush(stdout);
        }
    kn_blas_destroy(b.blas);
    BK_CUBLAS(cublasDestroy(b.h));
    free(ids), free(plan);
    return 0; /* device memory goes with the process */
}
