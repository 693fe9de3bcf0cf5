// device.cu — error reporting for every kernel file and the choice between the tensor-core (mma.sync) and the
// FP32-FMA attention paths: by a probe of what the card does (mma.sync against paired FP16 FMAs), overridable by
// SMALLCODER_NO_TENSOR_CORES=1 or by kn_set_tensor_cores (tests run both paths on one GPU that way).
#include <cublas_v2.h>  // cublasGetStatusString
#include <stdarg.h>
#include <string.h>

#include "kernels/common.cuh"
#include "kernels/gemm.cuh"  // the per-device cache the probe result joins

static char kn_error_msg[512];

extern "C" const char *kn_last_error(void) { return kn_error_msg; }

int kn_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kn_error_msg, sizeof kn_error_msg, fmt, ap);
    va_end(ap);
    return -1;
}

void kn_cuda_fail(cudaError_t err, const char *call, const char *file, int line) {
    const char *hint = "";
    if (err == cudaErrorMemoryAllocation) hint = " (out of device memory: lower the sequence length or batch)";
    else if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorUnsupportedPtxVersion)
        hint = " (this build has no code for this GPU: rebuild with CMAKE_CUDA_ARCHITECTURES naming it)";
    else if (err == cudaErrorInsufficientDriver) hint = " (the NVIDIA driver is older than the CUDA runtime)";
    else if (err == cudaErrorIllegalAddress || err == cudaErrorLaunchFailure)
        hint = " (a kernel faulted; run under compute-sanitizer to find it)";
    fprintf(stderr, "%s:%d: CUDA error %s: %s in %s%s\n", file, line, cudaGetErrorName(err), cudaGetErrorString(err),
            call, hint);
    exit(1);
}

void kn_cublas_fail(int status, const char *call, const char *file, int line) {
    fprintf(stderr, "%s:%d: cuBLAS error %d (%s) in %s\n", file, line, status,
            cublasGetStatusString((cublasStatus_t)status), call);
    exit(1);
}

static int kn_tc_mode = -1;  // -1 auto, 0 off, 1 on

extern "C" void kn_set_tensor_cores(int mode) { kn_tc_mode = mode < 0 ? -1 : (mode ? 1 : 0); }

// ---- the tensor-core probe ----
// Turing parts without tensor cores (TU116/TU117: GTX 16xx, MX450/MX550, Quadro T400-T1200) report sm_75 like the
// T4 and still execute mma.sync, on their FP16 ALUs: no faster than paired FP16 FMAs, often much slower (lc0 #849
// measured 8x). Real tensor cores run FP16 mma with FP32 accumulation at 2x (GeForce Ampere) to 7x (Hopper) the
// __hfma2 rate. So: the same number of flops both ways, tensor cores iff the mma is at least 1.5x faster.
enum { PROBE_THREADS = 128, PROBE_CHAINS_MMA = 4, PROBE_CHAINS_H2 = 8 };

__device__ __forceinline__ void probe_mma(float c[4], uint32_t a0, uint32_t a1, uint32_t b0) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(b0));
}

// iters x 4 independent m16n8k8 per warp: 8192 flops per warp and iteration
__global__ void probe_mma_kernel(float *out, int iters) {
    uint32_t a0 = 0x3c003c00u ^ (threadIdx.x & 31), a1 = a0 ^ 1u, b0 = 0x20002000u;  // ~1 and 2^-7: no overflow
    float acc[PROBE_CHAINS_MMA][4] = {};
    for (int i = 0; i < iters; i++)
#pragma unroll
        for (int j = 0; j < PROBE_CHAINS_MMA; j++) probe_mma(acc[j], a0, a1, b0);
    float s = 0.0f;
    for (int j = 0; j < PROBE_CHAINS_MMA; j++) s += acc[j][0] + acc[j][1] + acc[j][2] + acc[j][3];
    if (s == -1.0f) out[threadIdx.x] = s;  // never true: keeps the work without a store
}

// 8 iters x 8 independent __hfma2 per thread: the same 8192 flops per warp and (mma) iteration
__global__ void probe_hfma2_kernel(float *out, int iters) {
    __half2 x = __floats2half2_rn(0.5f, 0.25f), y = __floats2half2_rn(0.001f * (threadIdx.x & 31), 0.5f);
    __half2 acc[PROBE_CHAINS_H2];
#pragma unroll
    for (int j = 0; j < PROBE_CHAINS_H2; j++) acc[j] = y;
    for (int i = 0; i < 8 * iters; i++)
#pragma unroll
        for (int j = 0; j < PROBE_CHAINS_H2; j++) acc[j] = __hfma2(x, acc[j], y);  // bounded: |x| < 1
    float s = 0.0f;
    for (int j = 0; j < PROBE_CHAINS_H2; j++) s += __low2float(acc[j]) + __high2float(acc[j]);
    if (s == -1.0f) out[threadIdx.x] = s;
}

// Best of three timed launches (after one warm-up), or the fake timer's answer for `what`.
static double probe_time(int mma, int blocks, int iters, const char *what) {
    cudaEvent_t e0, e1;
    KN_CHECK(cudaEventCreate(&e0));
    KN_CHECK(cudaEventCreate(&e1));
    float best = 0.0f;
    for (int r = 0; r < 4; r++) {
        KN_CHECK(cudaEventRecord(e0, 0));
        if (mma) probe_mma_kernel<<<blocks, PROBE_THREADS, 0, 0>>>(NULL, iters);
        else probe_hfma2_kernel<<<blocks, PROBE_THREADS, 0, 0>>>(NULL, iters);
        KN_CHECK_LAUNCH();
        KN_CHECK(cudaEventRecord(e1, 0));
        KN_CHECK(cudaEventSynchronize(e1));
        float ms = 0.0f;
        KN_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        if (r > 0 && (best == 0.0f || ms < best)) best = ms;
    }
    KN_CHECK(cudaEventDestroy(e0));
    KN_CHECK(cudaEventDestroy(e1));
    double fake;
    return kn_fake_time(what, &fake) ? fake : best;
}

// Runs the probe on the current device: 1 when mma.sync is at least 1.5x faster than the same flops of __hfma2.
static int kn_probe_tensor_cores(const kn_dev_info *d) {
#ifdef SC_CUDA_EMULATION
    const int blocks = 1, iters = 1;  // the emulator runs the kernels; its clock says nothing about a GPU
#else
    const int blocks = 8 * (d->sm_count > 0 ? d->sm_count : 1), iters = 2048;
#endif
    double t_mma = probe_time(1, blocks, iters, "probe mma"), t_h2 = probe_time(0, blocks, iters, "probe hfma2");
    double flops = (double)blocks * (PROBE_THREADS / 32) * iters * 8192.0;
    int tc = t_mma > 0.0 && t_h2 >= 1.5 * t_mma;
#ifdef SC_CUDA_EMULATION
    double fake;
    if (!kn_fake_time("probe mma", &fake)) { /* no hardware to measure: the old rule, by compute capability */
        fprintf(stderr, "smallcoder: %s: tensor cores %s (emulator: sm_%d, not measured)\n", d->name,
                d->cc >= 75 ? "yes" : "no", d->cc);
        return d->cc >= 75;
    }
#endif
    fprintf(stderr, "smallcoder: %s: tensor cores %s (probe: mma.sync %.2f TFLOP/s, paired FP16 FMA %.2f TFLOP/s)\n",
            d->name, tc ? "yes" : "no", t_mma > 0 ? flops / t_mma * 1e-9 : 0.0, t_h2 > 0 ? flops / t_h2 * 1e-9 : 0.0);
    return tc;
}

extern "C" int kn_device_has_tensor_cores(void) {
    const kn_dev_info *d = kn_dev_current();
    if (d->cc < 75) return 0;  // no mma.sync.m16n8k8 before Turing
    int tc;
    if (kn_cache_get_tc(d, &tc)) return tc;
    tc = kn_probe_tensor_cores(d);
    kn_cache_put_tc(d, tc);
    return tc;
}

extern "C" int kn_tensor_cores(void) {
    if (kn_tc_mode >= 0) return kn_tc_mode;
    const char *env = getenv("SMALLCODER_NO_TENSOR_CORES");
    if (env && *env && strcmp(env, "0") != 0) return 0;
    return kn_device_has_tensor_cores();
}
