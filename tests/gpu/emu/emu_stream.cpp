// emu_stream.cpp — the CUDA runtime API subset of the CPU emulator: memory, copies, streams, events, graphs and the
// cuBLAS GEMM the project calls. Work given to a stream is queued, not run: at every synchronisation the queued
// operations of all streams run in a random interleaving that honours what CUDA guarantees (order within a stream,
// cudaStreamWaitEvent on the last cudaEventRecord before it, the legacy default stream ordered against every other
// stream), so a missing event wait or a host write into a pinned buffer a copy still reads changes results here
// as it may on a GPU. Copies from pageable host memory synchronise and take their bytes at the call, copies into
// it synchronise, as the CUDA runtime documents; pinned buffers (cudaMallocHost) are read and written when the copy
// runs. While a stream captures, operations are recorded into the graph instead (cudaGraphLaunch queues them).
#include "tests/gpu/emu/emu_internal.h"

#include <cblas.h>
#include <ctype.h>
#include <cublas_v2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <deque>
#include <map>
#include <unordered_map>
#include <vector>

cudaError_t g_emu_last = cudaSuccess;

struct CUevent_st {
    double t;
    long recorded, completed;  // cudaEventRecord calls made; of them, the ones whose stream reached them
};

struct CUstream_st {
    struct Op {
        long seq;
        std::function<void()> fn;
        CUevent_st *wait_ev;  // a cudaStreamWaitEvent: ready once wait_ev->completed >= wait_n
        long wait_n;
    };
    std::deque<Op> q;
};

namespace {

CUstream_st g_legacy;                     // stream 0: ordered against every other (blocking) stream
std::vector<CUstream_st *> g_streams{&g_legacy};
long g_seq = 0;
size_t g_allocated = 0;
std::unordered_map<void *, size_t> g_sizes;  // cudaMalloc'd blocks, so cudaFree gives their bytes back
std::map<const char *, size_t> g_pinned;  // cudaMallocHost blocks: start -> bytes
bool g_capturing = false;
std::vector<std::function<void()>> g_captured;

CUstream_st *stream_of(cudaStream_t s) { return s ? (CUstream_st *)s : &g_legacy; }

bool is_pinned(const void *p) {
    auto it = g_pinned.upper_bound((const char *)p);
    if (it == g_pinned.begin()) return false;
    --it;
    return (const char *)p < it->first + it->second;
}

double now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void push(cudaStream_t s, std::function<void()> fn, CUevent_st *wait_ev = nullptr, long wait_n = 0) {
    stream_of(s)->q.push_back(CUstream_st::Op{++g_seq, std::move(fn), wait_ev, wait_n});
}

// the head of st may run: its event has been reached, and the legacy stream's order against the others holds
bool ready(const CUstream_st *st) {
    const CUstream_st::Op &op = st->q.front();
    if (op.wait_ev && op.wait_ev->completed < op.wait_n) return false;
    if (st == &g_legacy) {
        for (const CUstream_st *o : g_streams)
            if (o != &g_legacy && !o->q.empty() && o->q.front().seq < op.seq) return false;
        return true;
    }
    return g_legacy.q.empty() || g_legacy.q.front().seq > op.seq;
}

}  // namespace

void emu_enqueue(cudaStream_t s, std::function<void()> op) {
    if (g_capturing) g_captured.push_back(std::move(op));
    else push(s, std::move(op));
}

void emu_flush() {
    static int fifo = -1;  // SC_EMU_STREAM_ORDER=fifo: the order of the calls (to tell a stream bug from others)
    if (fifo < 0) fifo = getenv("SC_EMU_STREAM_ORDER") && !strcmp(getenv("SC_EMU_STREAM_ORDER"), "fifo");
    std::vector<CUstream_st *> can;
    for (;;) {
        can.clear();
        size_t pending = 0;
        for (CUstream_st *st : g_streams) {
            pending += st->q.size();
            if (!st->q.empty() && ready(st)) can.push_back(st);
        }
        if (!pending) return;
        if (can.empty())
            emu_fatal("streams deadlocked: every queued operation waits for an event no stream will reach");
        CUstream_st *st = can[std::uniform_int_distribution<size_t>(0, can.size() - 1)(emu_rng())];
        if (fifo)
            for (CUstream_st *c : can)
                if (c->q.front().seq < st->q.front().seq) st = c;
        CUstream_st::Op op = std::move(st->q.front());
        st->q.pop_front();
        if (op.fn) op.fn();
    }
}

// The simulated device (EMU_DEVICE): "" = the default 8 GiB sm_90 device with nothing taken by a context;
// "mx450" = a GeForce MX450 2 GB (TU117: sm_75, 14 SMs, no tensor cores, 64-bit GDDR6 at 10 Gbps = 80 GB/s) whose
// CUDA context takes 300 MiB, the figure DESIGN.md plans with. Allocations beyond the free memory fail, as on a GPU.
struct EmuDevice {
    const char *name;
    size_t total, context;
    int cc, sms, mem_clock_khz, bus_bits;
};
static const EmuDevice *emu_device(void) {
    static const EmuDevice def = {"CUDA emulator on the CPU", (size_t)8 << 30, 0, 90, 4, 0, 0};
    static const EmuDevice mx450 = {"NVIDIA GeForce MX450 (CUDA emulator on the CPU)", (size_t)2 << 30,
                                    (size_t)300 << 20, 75, 14, 5000000, 64};
    const char *e = getenv("EMU_DEVICE");
    return e && !strcmp(e, "mx450") ? &mx450 : &def;
}

extern "C" {

cudaError_t cudaMalloc(void **p, size_t n) {
    const EmuDevice *d = emu_device();
    if (g_allocated + n + d->context > d->total) {
        *p = nullptr;
        return g_emu_last = cudaErrorMemoryAllocation;
    }
    *p = aligned_alloc(256, (n + 255) / 256 * 256);
    if (!*p) return g_emu_last = cudaErrorMemoryAllocation;
    memset(*p, 0xff, n);  // device memory starts as garbage: NaN in both FP16 and FP32
    g_allocated += n;
    g_sizes[*p] = n;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    emu_flush();  // cudaFree synchronises the device
    auto it = g_sizes.find(p);
    if (it != g_sizes.end()) g_allocated -= it->second, g_sizes.erase(it);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) {
    const char *e = getenv("EMU_NO_PINNED");  // "1": page locking refused, as under WSL2 or a low RLIMIT_MEMLOCK
    if (e && !strcmp(e, "1")) {
        *p = nullptr;
        return g_emu_last = cudaErrorMemoryAllocation;
    }
    *p = malloc(n ? n : 1);
    if (!*p) return g_emu_last = cudaErrorMemoryAllocation;
    g_pinned[(const char *)*p] = n ? n : 1;
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
    emu_flush();
    g_pinned.erase((const char *)p);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind) {
    if (g_capturing) return g_emu_last = cudaErrorStreamCaptureUnsupported;  // a synchronous call during capture
    emu_flush();
    if (n) memmove(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind k, cudaStream_t s) {
    if (!n) return cudaSuccess;
    if (k == cudaMemcpyHostToDevice && !is_pinned(src) && !g_capturing) {
        // pageable source: the runtime synchronises the stream, then stages the bytes before returning, so the
        // caller may reuse the buffer (here everything queued runs first: a superset of the stream's work)
        emu_flush();
        std::vector<char> bytes((const char *)src, (const char *)src + n);
        push(s, [dst, bytes]() { memcpy(dst, bytes.data(), bytes.size()); });
        return cudaSuccess;
    }
    if (k == cudaMemcpyDeviceToHost && !is_pinned(dst) && !g_capturing) {
        // pageable destination: returns once the copy is done
        push(s, [dst, src, n]() { memmove(dst, src, n); });
        emu_flush();
        return cudaSuccess;
    }
    emu_enqueue(s, [dst, src, n]() { memmove(dst, src, n); });
    return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int v, size_t n) {
    if (g_capturing) return g_emu_last = cudaErrorStreamCaptureUnsupported;
    emu_flush();
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
    emu_enqueue(s, [p, v, n]() { memset(p, v, n); });
    return cudaSuccess;
}
cudaError_t cudaMemset2DAsync(void *p, size_t pitch, int v, size_t width, size_t height, cudaStream_t s) {
    emu_enqueue(s, [=]() {
        for (size_t r = 0; r < height; r++) memset((char *)p + r * pitch, v, width);
    });
    return cudaSuccess;
}
cudaError_t cudaMemcpyToSymbolAsync(const void *symbol, const void *src, size_t n, size_t off, enum cudaMemcpyKind,
                                    cudaStream_t s) {
    std::vector<char> bytes((const char *)src, (const char *)src + n);  // from host memory: staged at the call
    emu_enqueue(s, [symbol, off, bytes]() { memcpy((char *)symbol + off, bytes.data(), bytes.size()); });
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_emu_last;
    g_emu_last = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return g_emu_last; }
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
    return e && *e ? atoi(e) : emu_device()->cc;
}
static int emu_sms(void) {
    const char *e = getenv("SC_EMU_SMS");  // the SM count kernels size their grids by (default: the device's)
    return e && atoi(e) > 0 ? atoi(e) : emu_device()->sms;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", emu_device()->name);
    p->major = emu_cc() / 10, p->minor = emu_cc() % 10;
    p->totalGlobalMem = emu_device()->total;
    p->multiProcessorCount = emu_sms();
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
    *v = a == cudaDevAttrComputeCapabilityMajor   ? emu_cc() / 10
         : a == cudaDevAttrComputeCapabilityMinor ? emu_cc() % 10
         : a == cudaDevAttrMultiProcessorCount    ? emu_sms()
         : a == cudaDevAttrMemoryClockRate        ? emu_device()->mem_clock_khz
         : a == cudaDevAttrGlobalMemoryBusWidth   ? emu_device()->bus_bits
                                                  : 0;
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *fr, size_t *total) {
    *total = emu_device()->total;
    *fr = *total - emu_device()->context - g_allocated;
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) {
    CUstream_st *st = new CUstream_st();
    g_streams.push_back(st);
    *s = st;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    emu_flush();  // its queued work completes first
    for (size_t i = 0; i < g_streams.size(); i++)
        if (g_streams[i] == (CUstream_st *)s) g_streams.erase(g_streams.begin() + (long)i);
    delete (CUstream_st *)s;
    return cudaSuccess;
}
// a stream or event synchronisation runs everything queued (the other streams too: their order is random anyway)
cudaError_t cudaStreamSynchronize(cudaStream_t) {
    if (g_capturing) return g_emu_last = cudaErrorStreamCaptureUnsupported;
    emu_flush();
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    if (g_capturing) return g_emu_last = cudaErrorStreamCaptureUnsupported;
    emu_flush();
    return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void *, enum cudaFuncAttribute a, int v) {
    if (a == cudaFuncAttributeMaxDynamicSharedMemorySize && v > (emu_cc() >= 90 ? 227 : 64) * 1024)
        return g_emu_last = cudaErrorInvalidValue;
    return cudaSuccess;
}

// events: wall-clock times when the stream reaches them (the emulator's timings mean nothing; they only let
// timing code run) and the order they give between streams
cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = new CUevent_st{0.0, 0, 0};
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    emu_flush();
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    if (g_capturing) return cudaSuccess;  // inside a graph everything runs in capture order
    long n = ++e->recorded;
    push(s, [e, n]() {
        e->t = now_ms();
        e->completed = n;
    });
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) {
    emu_flush();
    return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = (float)(b->t - a->t);
    return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int) {
    if (g_capturing) return cudaSuccess;
    push(s, nullptr, e, e->recorded);  // waits for the last record made before this call (none: no wait)
    return cudaSuccess;
}

// graphs: a graph is the list of operations recorded between BeginCapture and EndCapture; launching one queues
// them on the stream
struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
};
cudaError_t cudaStreamBeginCapture(cudaStream_t, enum cudaStreamCaptureMode) {
    if (g_capturing) return g_emu_last = cudaErrorIllegalState;
    g_capturing = true;
    g_captured.clear();
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g) {
    if (!g_capturing) return g_emu_last = cudaErrorIllegalState;
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
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
    if (g_capturing) return g_emu_last = cudaErrorStreamCaptureUnsupported;
    for (auto &op : e->ops) push(s, op);
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

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType At, int lda, const void *Bp, cudaDataType Bt,
                            int ldb, const void *beta, void *C, cudaDataType Ct, int ldc, cublasComputeType_t ct,
                            cublasGemmAlgo_t) {
    if (At != CUDA_R_16F || Bt != CUDA_R_16F || (Ct != CUDA_R_16F && Ct != CUDA_R_32F) || ct != CUBLAS_COMPUTE_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ar) || ldb < std::max(1, br) || ldc < std::max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    float a = *(const float *)alpha, b = *(const float *)beta;  // host pointer mode: read at the call
    emu_enqueue(h->stream, [=]() {
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
    });
    return CUBLAS_STATUS_SUCCESS;
}

// SGEMM on FP32 device (here: host) memory, queued on the handle's stream; beta = 0 never reads C, as cuBLAS
// documents
cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda, const float *Bp, int ldb, const float *beta,
                              float *C, int ldc) {
    int ar = ta == CUBLAS_OP_N ? m : k, br = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ar) || ldb < std::max(1, br) || ldc < std::max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    float a = *alpha, b = *beta;  // host pointer mode: read at the call
    emu_enqueue(h->stream, [=]() {
        if (b == 0.0f)
            for (int c = 0; c < n; c++) memset(C + (size_t)c * ldc, 0, sizeof(float) * (size_t)m);
        cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                    tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, a, A, lda, Bp, ldb, b, C, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
