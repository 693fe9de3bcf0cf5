// device.cu — error reporting for every kernel file and the choice between the tensor-core (mma.sync) and the
// FP32-FMA attention paths: from the device's properties, overridable by SMALLCODER_NO_TENSOR_CORES=1 or by
// kn_set_tensor_cores (tests run both paths on one GPU that way).
#include <cublas_v2.h>  // cublasGetStatusString
#include <stdarg.h>
#include <string.h>

#include "kernels/common.cuh"

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

// Turing parts without tensor cores (TU117/TU116: GTX 16xx, MX450/MX550, Quadro T400-T1200) still execute
// mma.sync, slowly; their names are the only tell.
static int kn_name_lacks_tensor_cores(const char *name) {
    static const char *const parts[] = {"GTX 16", " MX", "T400", "T500", "T550", "T600", "T1000", "T1200"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strstr(name, parts[i])) return 1;
    return 0;
}

extern "C" int kn_device_has_tensor_cores(void) {
    static int cached[64], known[64];
    int dev = 0;
    KN_CHECK(cudaGetDevice(&dev));
    if (dev >= 0 && dev < 64 && known[dev]) return cached[dev];
    cudaDeviceProp p;
    KN_CHECK(cudaGetDeviceProperties(&p, dev));
    int cc = p.major * 10 + p.minor;
    int tc = cc >= 75 && !(cc == 75 && kn_name_lacks_tensor_cores(p.name));
    if (dev >= 0 && dev < 64) {
        cached[dev] = tc;
        known[dev] = 1;
    }
    return tc;
}

extern "C" int kn_tensor_cores(void) {
    if (kn_tc_mode >= 0) return kn_tc_mode;
    const char *env = getenv("SMALLCODER_NO_TENSOR_CORES");
    if (env && *env && strcmp(env, "0") != 0) return 0;
    return kn_device_has_tensor_cores();
}
