// emu_runtime.cpp — the CPU emulator's "device": each CUDA thread of a block is a fiber (ucontext), blocks run one
// after another; barriers, warp shuffles and mma.sync are emulated with their documented semantics; the subset of
// the CUDA runtime and cuBLAS the project uses is implemented on host memory (GEMMs through OpenBLAS in FP32).
// Fibers are resumed in a shuffled order at every pass, so a missing barrier shows up as a wrong result rather
// than happening to work; a barrier that not every live thread reaches is reported as a deadlock.
#undef _FORTIFY_SOURCE  // its longjmp check rejects the jumps between fiber stacks below
#include "tests/gpu/emu/cuda_emu.h"       // first: it defines __shared__ before the CUDA headers do

#include <cblas.h>
#include <cublas_v2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <time.h>
#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <random>
#include <vector>

namespace {

// A fiber (one CUDA thread) runs on a worker: a stack started once through its ucontext (setcontext restores the
// signal mask, a system call) that then runs one thread after another, parked at `idle` in between. Every switch
// is _setjmp/_longjmp, which unlike swapcontext makes no system call: the emulator spends most of its time switching.
struct Worker {
    ucontext_t ctx;
    jmp_buf idle;
    bool started;
};

struct Fiber {
    jmp_buf jb;
    dim3 tid;
    int lane, warp, done, waiting, started;  // waiting: 0 no, 1 block barrier, 2 warp collective
    unsigned wait_gen;
};

struct Warp {
    int live, lanes, arrived;
    unsigned gen;
    float xf[2][32];
    double xd[2][32];
    uint32_t xa0[2][32], xa1[2][32], xb[2][32];
    float xc[2][32][4];  // mma: accumulators in, then the results, computed once by the last lane to arrive
};

struct Block {
    int n, live, arrived;
    unsigned gen;
    std::vector<Fiber> f;
    std::vector<Warp> warps;
    jmp_buf sched;
    Fiber *cur;
    const std::function<void()> *body;
    dim3 bid;
    std::vector<unsigned char> dyn;
};

const size_t kStack = 256 * 1024;
Block B;
dim3 g_grid, g_block;
std::vector<Worker *> g_workers;  // never freed: reused by every block
std::mt19937 g_rng(20240611u);
cudaError_t g_last = cudaSuccess;
long g_collectives = 0;  // barriers and warp collectives run so far
bool g_direct = false;   // this launch's blocks run their threads one after another, without fibers
size_t g_allocated = 0;
// CUDA graphs: while a stream captures, launches and async copies are recorded (not run), as on a GPU; a graph
// launch replays them in order. Launch bodies capture their arguments by value (translate.py), so they outlive
// the function that queued them.
bool g_capturing = false;
std::vector<std::function<void()>> g_captured;

[[noreturn]] void fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "CUDA emulator: block (%u,%u,%u) thread (%u,%u,%u): ", B.bid.x, B.bid.y, B.bid.z,
            B.cur ? B.cur->tid.x : 0, B.cur ? B.cur->tid.y : 0, B.cur ? B.cur->tid.z : 0);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void wait_for(int kind, unsigned gen) {
    Fiber *me = B.cur;
    me->waiting = kind;
    me->wait_gen = gen;
    if (!_setjmp(me->jb)) _longjmp(B.sched, 1);
    me->waiting = 0;
}

void fiber_entry() {
    (*B.body)();
    Fiber *me = B.cur;
    me->done = 1;
    B.live--;
    Warp &w = B.warps[me->warp];
    w.live--;
    if (w.arrived > 0) fatal("a thread exited while lanes of its warp wait in a warp collective");
    if (B.arrived > 0 && B.arrived == B.live) {  // exited threads do not count at __syncthreads
        B.arrived = 0;
        B.gen++;
    }
    Worker *wk = g_workers[me - B.f.data()];
    if (!_setjmp(wk->idle)) _longjmp(B.sched, 1);
}

void worker_main() {
    for (;;) fiber_entry();  // each pass runs the thread the scheduler resumed this worker for (B.cur)
}

void run_block() {
    int n = B.n;
    while ((int)g_workers.size() < n) {
        Worker *wk = new Worker();
        getcontext(&wk->ctx);
        wk->ctx.uc_stack.ss_sp = malloc(kStack);
        wk->ctx.uc_stack.ss_size = kStack;
        wk->ctx.uc_link = nullptr;  // worker_main never returns
        makecontext(&wk->ctx, worker_main, 0);
        wk->started = false;
        g_workers.push_back(wk);
    }
    B.f.assign(n, Fiber());
    int nw = (n + 31) / 32;
    B.warps.assign(nw, Warp());
    for (int w = 0; w < nw; w++) B.warps[w].live = B.warps[w].lanes = std::min(32, n - 32 * w);
    B.live = n, B.arrived = 0, B.gen = 0, B.cur = nullptr;
    for (int i = 0; i < n; i++) {
        Fiber &f = B.f[i];
        f.tid = dim3(i % g_block.x, (i / g_block.x) % g_block.y, i / (g_block.x * g_block.y));
        f.lane = i % 32, f.warp = i / 32, f.done = 0, f.waiting = 0, f.started = 0;
    }
    std::vector<int> order(n);
    for (int i = 0; i < n; i++) order[i] = i;
    for (;;) {
        std::shuffle(order.begin(), order.end(), g_rng);
        int alive = 0, ran = 0;
        for (int i : order) {
            Fiber &f = B.f[i];
            if (f.done) continue;
            alive++;
            if (f.waiting == 1 && B.gen == f.wait_gen) continue;
            if (f.waiting == 2 && B.warps[f.warp].gen == f.wait_gen) continue;
            B.cur = &f;
            if (!_setjmp(B.sched)) {
                if (!f.started) {
                    f.started = 1;
                    Worker *wk = g_workers[i];
                    if (!wk->started) {
                        wk->started = true;
                        setcontext(&wk->ctx);
                    }
                    _longjmp(wk->idle, 1);
                }
                _longjmp(f.jb, 1);
            }
            ran++;
        }
        if (!alive) break;
        if (!ran) fatal("deadlock: every live thread waits at a barrier that not all of them reach");
    }
    B.cur = nullptr;
}

void check_not_direct(const char *what) {
    g_collectives++;
    if (g_direct)
        fatal("%s in a block of a launch whose first block used none (barriers must not depend on the data)", what);
}

// A block of a launch whose first block called no barrier and no warp collective: its threads cannot interact,
// so they run one after another on this stack (elementwise kernels launch hundreds of thousands of threads).
void run_block_direct() {
    Fiber f;
    B.cur = &f;
    for (int i = 0; i < B.n; i++) {
        f.tid = dim3(i % g_block.x, (i / g_block.x) % g_block.y, i / (g_block.x * g_block.y));
        f.lane = i % 32, f.warp = i / 32;
        (*B.body)();
    }
    B.cur = nullptr;
}

void warp_barrier(Warp &w, unsigned g) {
    if (++w.arrived == w.live) {
        w.arrived = 0;
        w.gen++;
    } else {
        wait_for(2, g);
    }
}

Warp &warp_for_collective(unsigned mask) {
    check_not_direct("a warp collective");
    Warp &w = B.warps[B.cur->warp];
    if (mask != 0xffffffffu) fatal("warp collective with mask %#x: only full warps are used here", mask);
    if (w.lanes != 32) fatal("full-mask warp collective in a partial warp of %d lanes", w.lanes);
    if (w.live != 32) fatal("full-mask warp collective after %d lanes of the warp exited", 32 - w.live);
    return w;
}

float half_bits(uint32_t reg, int hi) {
    __half_raw r;
    r.x = (unsigned short)(hi ? reg >> 16 : reg & 0xffffu);
    return __half2float(__half(r));
}

}  // namespace

dim3 emu_thread_idx() { return B.cur->tid; }
dim3 emu_block_idx() { return B.bid; }
dim3 emu_block_dim() { return g_block; }
dim3 emu_grid_dim() { return g_grid; }

void __syncthreads() {
    check_not_direct("__syncthreads");
    unsigned g = B.gen;
    if (++B.arrived == B.live) {
        B.arrived = 0;
        B.gen++;
    } else {
        wait_for(1, g);
    }
}

void __syncwarp(unsigned mask) {
    Warp &w = warp_for_collective(mask);
    warp_barrier(w, w.gen);
}

float __shfl_xor_sync(unsigned mask, float v, int lane_mask, int width) {
    if (width != 32) fatal("shuffle width %d", width);
    Warp &w = warp_for_collective(mask);
    unsigned g = w.gen;
    int lane = B.cur->lane;
    w.xf[g & 1][lane] = v;
    warp_barrier(w, g);
    return w.xf[g & 1][(lane ^ lane_mask) & 31];
}

double __shfl_xor_sync(unsigned mask, double v, int lane_mask, int width) {
    if (width != 32) fatal("shuffle width %d", width);
    Warp &w = warp_for_collective(mask);
    unsigned g = w.gen;
    int lane = B.cur->lane;
    w.xd[g & 1][lane] = v;
    warp_barrier(w, g);
    return w.xd[g & 1][(lane ^ lane_mask) & 31];
}

// m16n8k8, row.col, f16 inputs, f32 accumulate. Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k8"):
// group = lane / 4, tig = lane % 4;  A: a0 = {A[group][2 tig], A[group][2 tig + 1]}, a1 = same at row group + 8;
// B: b0 = {B[2 tig][group], B[2 tig + 1][group]};  C/D: c0, c1 = row group, cols 2 tig, 2 tig + 1; c2, c3 = row
// group + 8. The low 16 bits of a register hold the element with the smaller index.
void emu_mma_m16n8k8(float c[4], uint32_t a0, uint32_t a1, uint32_t b0) {
    Warp &w = warp_for_collective(0xffffffffu);
    unsigned g = w.gen;
    int lane = B.cur->lane, p = g & 1;
    w.xa0[p][lane] = a0, w.xa1[p][lane] = a1, w.xb[p][lane] = b0;
    for (int i = 0; i < 4; i++) w.xc[p][lane][i] = c[i];
    if (w.arrived + 1 == w.live) {  // the last lane: compute every lane's D before the barrier releases them
        float A[16][8], Bm[8][8];
        for (int L = 0; L < 32; L++) {
            int grp = L >> 2, tig = L & 3;
            for (int h = 0; h < 2; h++) {
                A[grp][2 * tig + h] = half_bits(w.xa0[p][L], h);
                A[grp + 8][2 * tig + h] = half_bits(w.xa1[p][L], h);
                Bm[2 * tig + h][grp] = half_bits(w.xb[p][L], h);
            }
        }
        for (int L = 0; L < 32; L++) {
            int grp = L >> 2, tig = L & 3;
            int rows[4] = {grp, grp, grp + 8, grp + 8}, cols[4] = {2 * tig, 2 * tig + 1, 2 * tig, 2 * tig + 1};
            for (int i = 0; i < 4; i++) {
                float s = 0.0f;
                for (int k = 0; k < 8; k++) s += A[rows[i]][k] * Bm[k][cols[i]];
                w.xc[p][L][i] += s;
            }
        }
    }
    warp_barrier(w, g);
    for (int i = 0; i < 4; i++) c[i] = w.xc[p][lane][i];
}

void *emu_dynamic_smem() { return B.dyn.data(); }

void emu_launch_impl(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body) {
    int64_t threads = (int64_t)block.x * block.y * block.z;
    if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.y > 65535 || grid.z > 65535 || threads < 1 || threads > 1024 ||
        smem > 227 * 1024) {
        fprintf(stderr, "CUDA emulator: invalid launch grid (%u,%u,%u) block (%u,%u,%u) smem %zu\n", grid.x, grid.y,
                grid.z, block.x, block.y, block.z, smem);
        g_last = cudaErrorInvalidConfiguration;
        return;
    }
    if (g_capturing) {
        std::function<void()> b = body;
        g_captured.push_back([grid, block, smem, b]() { emu_launch_impl(grid, block, smem, b); });
        return;
    }
    g_grid = grid, g_block = block;
    B.n = (int)threads;
    B.body = &body;
    g_direct = false;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                B.bid = dim3(x, y, z);
                B.dyn.assign(smem ? smem : 1, 0xff);  // uninitialised shared memory reads as NaN
                long before = g_collectives;
                if (g_direct) {
                    run_block_direct();
                } else {
                    run_block();
                    g_direct = g_collectives == before;
                }
            }
    g_direct = false;
}

// ---- CUDA runtime subset ----
extern "C" {

cudaError_t cudaMalloc(void **p, size_t n) {
    *p = aligned_alloc(256, (n + 255) / 256 * 256);
    if (!*p) return g_last = cudaErrorMemoryAllocation;
    memset(*p, 0xff, n);  // device memory starts as garbage: NaN in both FP16 and FP32
    g_allocated += n;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind) {
    if (g_capturing) return g_last = cudaErrorStreamCaptureUnsupported;  // a synchronous call during capture
    if (n) memmove(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind k, cudaStream_t) {
    if (g_capturing) {
        g_captured.push_back([dst, src, n]() { if (n) memmove(dst, src, n); });
        return cudaSuccess;
    }
    return cudaMemcpy(dst, src, n, k);
}
cudaError_t cudaMemset(void *p, int v, size_t n) {
    if (g_capturing) return g_last = cudaErrorStreamCaptureUnsupported;
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) {
    if (g_capturing) {
        g_captured.push_back([p, v, n]() { memset(p, v, n); });
        return cudaSuccess;
    }
    return cudaMemset(p, v, n);
}
cudaError_t cudaMemset2DAsync(void *p, size_t pitch, int v, size_t width, size_t height, cudaStream_t) {
    for (size_t r = 0; r < height; r++) memset((char *)p + r * pitch, v, width);
    return cudaSuccess;
}
cudaError_t cudaMemcpyToSymbolAsync(const void *symbol, const void *src, size_t n, size_t off, enum cudaMemcpyKind,
                                    cudaStream_t) {
    memcpy((char *)symbol + off, src, n);
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last;
    g_last = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return g_last; }
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated CUDA error"; }
const char *cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }
cudaError_t cudaGetDevice(int *d) {
    *d = 0;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
static int emu_cc(void) {
    const char *e = getenv("SC_EMU_CC");  // e.g. 75: pretend to be a Turing card
    return e && *e ? atoi(e) : 90;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulator on the CPU");
    p->major = emu_cc() / 10, p->minor = emu_cc() % 10;
    p->totalGlobalMem = (size_t)8 << 30;
    p->multiProcessorCount = 4;
    p->sharedMemPerBlockOptin = emu_cc() >= 90 ? 227 * 1024 : 64 * 1024;
    // SC_EMU_UUID (32 hex digits) gives the device a UUID, as real GPUs have; unset, it has none (all zero), so
    // per-GPU caches (the GEMM choices, kernels/gemm_cache.cu) are not written by the emulator's tests
    const char *u = getenv("SC_EMU_UUID");
    for (int i = 0; u && i < 16 && isxdigit((unsigned char)u[2 * i]) && isxdigit((unsigned char)u[2 * i + 1]); i++) {
        char byte[3] = {u[2 * i], u[2 * i + 1], 0};
        p->uuid.bytes[i] = (char)strtol(byte, NULL, 16);
    }
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int) {
    *v = a == cudaDevAttrComputeCapabilityMajor ? emu_cc() / 10 : a == cudaDevAttrComputeCapabilityMinor ? emu_cc() % 10 : 0;
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *fr, size_t *total) {
    *total = (size_t)8 << 30;
    *fr = *total - g_allocated;
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) {
    *s = (cudaStream_t)0x5ca1ab1e;  // any non-null handle: everything runs synchronously here
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaFuncSetAttribute(const void *, enum cudaFuncAttribute a, int v) {
    if (a == cudaFuncAttributeMaxDynamicSharedMemorySize && v > (emu_cc() >= 90 ? 227 : 64) * 1024)
        return g_last = cudaErrorInvalidValue;
    return cudaSuccess;
}

// events: wall-clock times (the emulator's timings mean nothing; they only let timing code run)
struct CUevent_st {
    double t;
};
cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = new CUevent_st{0.0};
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    e->t = ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = (float)(b->t - a->t);
    return cudaSuccess;
}
// everything already ran in order, so a wait is a no-op; pinned host memory is ordinary memory
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned int) { return cudaSuccess; }
cudaError_t cudaMallocHost(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    return *p ? cudaSuccess : (g_last = cudaErrorMemoryAllocation);
}
cudaError_t cudaFreeHost(void *p) {
    free(p);
    return cudaSuccess;
}

// graphs: a graph is the list of operations recorded between BeginCapture and EndCapture; launching one replays it
struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
};
cudaError_t cudaStreamBeginCapture(cudaStream_t, enum cudaStreamCaptureMode) {
    if (g_capturing) return g_last = cudaErrorIllegalState;
    g_capturing = true;
    g_captured.clear();
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g) {
    if (!g_capturing) return g_last = cudaErrorIllegalState;
    g_capturing = false;
    *g = new CUgraph_st{std::move(g_captured)};
    g_captured.clear();
    return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t, enum cudaStreamCaptureStatus *st) {
    *st = g_capturing ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long) {
    *e = new CUgraphExec_st{g->ops};
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
    if (g_capturing) return g_last = cudaErrorStreamCaptureUnsupported;
    for (auto &op : e->ops) op();
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
    delete e;
    return cudaSuccess;
}

// ---- cuBLAS subset: GEMMs with FP16 inputs and FP32 accumulation, through OpenBLAS ----
struct cublasContext {
    cudaStream_t stream;
};

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    *h = new cublasContext();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t, void *, size_t) { return CUBLAS_STATUS_SUCCESS; }
const char *cublasGetStatusString(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS ? "success" : "error"; }

// a stored column-major matrix (rows x cols, leading dimension ld) of FP16 -> dense FP32 with ld = rows
static std::vector<float> emu_to_f32(const void *p, cudaDataType t, int rows, int cols, int ld) {
    std::vector<float> out((size_t)rows * cols);
    for (int c = 0; c < cols; c++)
        for (int r = 0; r < rows; r++) {
            size_t i = (size_t)c * ld + r;
            out[(size_t)c * rows + r] = t == CUDA_R_16F ? __half2float(((const __half *)p)[i]) : ((const float *)p)[i];
        }
    return out;
}

cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType At, int lda, const void *Bp, cudaDataType Bt,
                            int ldb, const void *beta, void *C, cudaDataType Ct, int ldc, cublasComputeType_t ct,
                            cublasGemmAlgo_t) {
    if (At != CUDA_R_16F || Bt != CUDA_R_16F || (Ct != CUDA_R_16F && Ct != CUDA_R_32F) || ct != CUBLAS_COMPUTE_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ar) || ldb < std::max(1, br) || ldc < std::max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    float a = *(const float *)alpha, b = *(const float *)beta;
    std::vector<float> Af = emu_to_f32(A, At, ar, ac, lda), Bf = emu_to_f32(Bp, Bt, br, bc, ldb);
    std::vector<float> Cf((size_t)m * n, 0.0f);
    if (b != 0.0f) Cf = emu_to_f32(C, Ct, m, n, ldc);
    cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, a, Af.data(), std::max(1, ar), Bf.data(),
                std::max(1, br), b, Cf.data(), std::max(1, m));
    for (int c = 0; c < n; c++)
        for (int r = 0; r < m; r++) {
            float v = Cf[(size_t)c * m + r];
            size_t i = (size_t)c * ldc + r;
            if (Ct == CUDA_R_16F) ((__half *)C)[i] = __float2half_rn(v);
            else ((float *)C)[i] = v;
        }
    return CUBLAS_STATUS_SUCCESS;
}


// SGEMM on FP32 device (here: host) memory; beta = 0 never reads C, as cuBLAS documents
cublasStatus_t cublasSgemm_v2(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda, const float *Bp, int ldb, const float *beta,
                              float *C, int ldc) {
    int ar = ta == CUBLAS_OP_N ? m : k, br = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ar) || ldb < std::max(1, br) || ldc < std::max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (*beta == 0.0f)
        for (int c = 0; c < n; c++) memset(C + (size_t)c * ldc, 0, sizeof(float) * (size_t)m);
    cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, *alpha, A, lda, Bp, ldb, *beta, C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
