/* cuda_check.h — the check macros of the host-side CUDA code (host/cuda_*.c): a failed CUDA runtime call is
 * printed with file:line and the call, then the process exits (a faulted context cannot be recovered). Calls whose
 * failure is an ordinary answer (out of memory at setup, no device) are checked by hand and return sc_fail. */
#ifndef SC_CUDA_CHECK_H
#define SC_CUDA_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime_api.h>

static inline void cuda_check_fail(cudaError_t e, const char *call, const char *file, int line) {
    fprintf(stderr, "%s:%d: CUDA error %s: %s in %s\n", file, line, cudaGetErrorName(e), cudaGetErrorString(e), call);
    exit(1);
}

#define CU_CHECK(call)                                                                                             \
    do {                                                                                                           \
        cudaError_t cu_err_ = (call);                                                                              \
        if (cu_err_ != cudaSuccess) cuda_check_fail(cu_err_, #call, __FILE__, __LINE__);                           \
    } while (0)

#endif
