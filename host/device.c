/* device.c — see device.h. Only the CUDA runtime is used here (no kernels), so even a build whose kernels are
 * missing can say what GPU it sees. */
#include "host/device.h"

#include <stdio.h>
#include <string.h>

#include "host/args.h"
#include "host/error.h"

#ifdef SC_HAVE_CUDA
#include <cuda_runtime_api.h>

int device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* "no driver" / "no device" is an answer, not a sticky error */
        return 0;
    }
    return n;
}

int device_describe(int dev, char *buf, size_t n) {
    struct cudaDeviceProp p;
    if (dev < 0 || dev >= device_count() || cudaGetDeviceProperties(&p, dev) != cudaSuccess)
        return sc_fail("CUDA device %d does not exist (%d found)", dev, device_count());
    snprintf(buf, n, "%s (sm_%d%d, %.1f GiB, %d SMs)", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), p.multiProcessorCount);
    return 0;
}

int device_memory(size_t *free_bytes, size_t *total_bytes) {
    if (device_count() <= 0) return sc_fail("no CUDA device");
    cudaError_t e = cudaMemGetInfo(free_bytes, total_bytes);
    if (e != cudaSuccess) return sc_fail("cudaMemGetInfo: %s", cudaGetErrorString(e));
    return 0;
}
#else
int device_count(void) { return 0; }
int device_describe(int dev, char *buf, size_t n) {
    (void)buf, (void)n;
    return sc_fail("CUDA device %d: this build has no CUDA support", dev);
}
int device_memory(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = *total_bytes = 0;
    return sc_fail("this build has no CUDA support");
}
#endif

const char *const device_names[] = {"cpu", "cuda", "auto", NULL};

int device_resolve(const char *device, int auto_prefers_cuda) {
    int d = sc_enum_index("device", device_names, device);
    if (d < 0) return -1;
    if (d == DEVICE_CPU) return 0;
    if (d == DEVICE_AUTO) return auto_prefers_cuda && device_count() > 0;
#ifndef SC_HAVE_KERNELS
    return sc_fail("--device cuda: this build has no CUDA backend (built without nvcc; rebuild with "
                   "-DSMALLCODER_CUDA=ON where the CUDA toolkit is installed); use --device cpu");
#else
    if (device_count() <= 0) return sc_fail("--device cuda: no CUDA device is visible (driver missing or no GPU)");
    return 1;
#endif
}
