/* device_probe.c — see device_probe.h. The context cannot be observed from outside without NVML (cudaMemGetInfo
 * itself creates it), so "context" is total minus the free memory right after it exists: on a laptop's dedicated
 * GPU that is the context alone; where a display or another process shares the GPU their memory is in it too,
 * which is memory our arena cannot have either. */
#include "host/device_probe.h"

#include <stdio.h>
#include <string.h>

#include "host/device.h"
#include "host/error.h"

void device_probe_estimate(device_probe_info *p) {
    memset(p, 0, sizeof *p);
    p->overhead = p->context = DEVICE_CONTEXT_ESTIMATE;
    snprintf(p->note, sizeof p->note, "estimated (no device open): public measurements of small cards, host/device_probe.h");
}

#ifdef SC_HAVE_KERNELS
#include <cuda_runtime_api.h>

#include "host/cuda_check.h"
#include "kernels/kernels.h"

static device_probe_info cached;
static int have_cached;

static double bandwidth_of(int dev) {
    int clock_khz = 0, bus_bits = 0;
    if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev) != cudaSuccess) {
        cudaGetLastError();
        return 0.0;
    }
    return 2.0 * clock_khz * 1e3 * bus_bits / 8.0; /* double data rate */
}

static int measure(int hd, device_probe_info *p) {
    memset(p, 0, sizeof *p);
    int dev = 0;
    struct cudaDeviceProp prop;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
        cudaGetLastError();
        return sc_fail("CUDA device: cannot read its properties");
    }
    size_t free_b = 0, total_b = 0;
    if (cudaFree(NULL) != cudaSuccess || cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) { /* makes the context */
        cudaGetLastError();
        return sc_fail("CUDA device: cannot create a context");
    }
    size_t free_ctx = free_b;
    cudaStream_t s;
    CU_CHECK(cudaStreamCreate(&s));
    /* the warm-up's inputs, then the GEMM workspace and staging, which the model keeps in its arena */
    size_t wb = kn_warmup_scratch_bytes(), blas_ws = (size_t)1 << 20, bytes = wb + blas_ws + KN_GEMM_STAGING_BYTES;
    void *scratch = NULL;
    if (cudaMalloc(&scratch, bytes) != cudaSuccess) {
        cudaGetLastError();
        CU_CHECK(cudaStreamDestroy(s));
        return sc_fail("CUDA device: not even %zu MiB free for the kernel warm-up (%.1f MiB free of %.1f)", bytes >> 20,
                       free_b / 1048576.0, total_b / 1048576.0);
    }
    kn_blas *b = kn_blas_create(s, (char *)scratch + wb, blas_ws, (char *)scratch + wb + blas_ws, KN_GEMM_STAGING_BYTES);
    kn_warmup(b, hd, scratch, s);
    CU_CHECK(cudaFree(scratch));
    CU_CHECK(cudaMemGetInfo(&free_b, &total_b)); /* with the handle still alive: the model will hold one */
    kn_blas_destroy(b);
    CU_CHECK(cudaStreamDestroy(s));
    p->measured = 1;
    p->total = (int64_t)total_b;
    p->context = (int64_t)(total_b - free_ctx);
    p->libs = free_ctx > free_b ? (int64_t)(free_ctx - free_b) : 0;
    p->overhead = p->context + p->libs;
    p->bandwidth = bandwidth_of(dev);
    snprintf(p->note, sizeof p->note, "measured on %s: total - free after the context, cuBLAS and a warm-up of "
             "every kernel (other processes on this GPU included)", prop.name);
    return 0;
}

void device_probe_forget(void) { have_cached = 0; }

int device_probe(int hd, device_probe_info *out) {
    if (device_count() <= 0) {
        device_probe_estimate(out);
        return 0;
    }
    if (!have_cached) {
        if (measure(hd, &cached)) return -1;
        have_cached = 1;
    }
    *out = cached;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        cudaGetLastError();
        return sc_fail("cudaMemGetInfo failed");
    }
    out->free_now = (int64_t)free_b;
    return 0;
}
#else
void device_probe_forget(void) {}

int device_probe(int hd, device_probe_info *out) {
    (void)hd;
    device_probe_estimate(out);
    return 0;
}
#endif

int64_t device_probe_budget(const device_probe_info *p) {
    if (!p->measured) return 0;
    return p->free_now > DEVICE_RESERVE ? p->free_now - DEVICE_RESERVE : 0;
}

const char *device_probe_describe(const device_probe_info *p, char *buf, int n) {
    if (p->measured)
        snprintf(buf, (size_t)n, "%.1f MiB (measured: context %.1f + cuBLAS and kernels %.1f)", p->overhead / 1048576.0,
                 p->context / 1048576.0, p->libs / 1048576.0);
    else
        snprintf(buf, (size_t)n, "%.1f MiB (estimated: no device open)", p->overhead / 1048576.0);
    return buf;
}
