// cuda_emu.h — force-included (-include) into kernels/*.cu translated to C++ by translate.py, so the real kernel
// sources run on the CPU: every CUDA thread is a fiber (emu_runtime.cpp), __syncthreads / __syncwarp / shuffles /
// mma.sync are emulated with the documented semantics, shared memory is a static (blocks run one at a time).
// A check of the kernels' logic (indexing, tiling, masking, barriers, the host code around them) where no GPU
// exists; it proves nothing about timing or about the hardware itself. See docs/cuda.md.
#ifndef SC_CUDA_EMU_H
#define SC_CUDA_EMU_H

#define SC_CUDA_EMULATION 1
// static shared memory is thread-local, so it lies in the program's TLS block where the racecheck
// (emu_racecheck.cpp) tells its addresses apart (the kernels touch no other thread-local data; fibers share the
// one OS thread). A section would do as well if GCC allowed one for the statics of inline functions.
#define __shared__ static thread_local
#define __launch_bounds__(...)

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include <functional>
#include <tuple>  // emu_bind keeps a launch's arguments in a tuple
#include <type_traits>

dim3 emu_thread_idx();
dim3 emu_block_idx();
dim3 emu_block_dim();
dim3 emu_grid_dim();
#define threadIdx (emu_thread_idx())
#define blockIdx (emu_block_idx())
#define blockDim (emu_block_dim())
#define gridDim (emu_grid_dim())

void __syncthreads();
void __syncwarp(unsigned mask = 0xffffffffu);
float __shfl_xor_sync(unsigned mask, float v, int lane_mask, int width = 32);
double __shfl_xor_sync(unsigned mask, double v, int lane_mask, int width = 32);
// mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 on this lane's fragments (c in, d out)
void emu_mma_m16n8k8(float c[4], uint32_t a0, uint32_t a1, uint32_t b0);
void *emu_dynamic_smem();

// dp4a: the four signed bytes of a times those of b, summed into c (sm_61+)
static inline int __dp4a(int a, int b, int c) {
    for (int i = 0; i < 4; i++) c += (int)(signed char)(a >> (8 * i)) * (int)(signed char)(b >> (8 * i));
    return c;
}
// paired FP16 FMA (sm_53+): each half is fma(a, b, c) rounded to FP16 (the product of two halves is exact in double,
// and so is the sum at the magnitudes a GEMM meets: one rounding, as the hardware does)
static inline __half2 __hfma2(__half2 a, __half2 b, __half2 c) {
    float2 x = __half22float2(a), y = __half22float2(b), z = __half22float2(c);
    return __halves2half2(__double2half((double)x.x * y.x + z.x), __double2half((double)x.y * y.y + z.y));
}
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }

// a kernel and its arguments, converted to its parameter types now (as a launch does: NULL becomes a null
// pointer), called later when the queued launch runs
template <class... P, class... A>
static inline std::function<void()> emu_bind(void (*f)(P...), A &&...a) {
    std::tuple<typename std::decay<P>::type...> args(std::forward<A>(a)...);
    return [f, args]() { std::apply(f, args); };
}

// a launch is queued on its stream (emu_stream.cpp) and runs at the next synchronisation; name: the kernel's
void emu_launch_impl(dim3 grid, dim3 block, size_t smem, cudaStream_t stream, const char *name,
                     const std::function<void()> &body);
template <class F>
static inline void emu_launch(dim3 grid, dim3 block, size_t smem, cudaStream_t stream, const char *name, F &&body) {
    emu_launch_impl(grid, block, smem, stream, name, std::function<void()>(body));
}

#endif
