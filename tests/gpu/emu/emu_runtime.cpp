// emu_runtime.cpp — the CPU emulator's "device": each CUDA thread of a block is a fiber (ucontext), blocks run one
// after another; barriers, warp shuffles and mma.sync are emulated with their documented semantics; the subset of
// the CUDA runtime and cuBLAS the project uses is implemented on host memory (GEMMs through OpenBLAS in FP32).
// Fibers are resumed in a shuffled order at every pass, so a missing barrier shows up as a wrong result rather
// than happening to work (and emu_racecheck.cpp reports it even when it happens to work); a barrier that not every
// live thread reaches is reported as a deadlock. The CUDA runtime API is in emu_stream.cpp.
#undef _FORTIFY_SOURCE  // its longjmp check rejects the jumps between fiber stacks below
#include "tests/gpu/emu/emu_internal.h"  // first: cuda_emu.h defines __shared__ before the CUDA headers do

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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
    int lin, lane, warp, done, waiting, started;  // waiting: 0 no, 1 block barrier, 2 warp collective
    unsigned wait_gen;
};

struct Warp {
    int live, lanes, arrived;
    unsigned gen, sync_gen;  // warp collectives completed; of them __syncwarp()s (the racecheck's order)
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
long g_collectives = 0;  // barriers and warp collectives run so far
bool g_direct = false;   // this launch's blocks run their threads one after another, without fibers
const char *g_kernel = "";  // the launch running now

[[noreturn]] void vfatal(const char *fmt, va_list ap) {
    fprintf(stderr, "CUDA emulator: %s block (%u,%u,%u) thread (%u,%u,%u): ", g_kernel, B.bid.x, B.bid.y, B.bid.z,
            B.cur ? B.cur->tid.x : 0, B.cur ? B.cur->tid.y : 0, B.cur ? B.cur->tid.z : 0);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    abort();
}
[[noreturn]] void fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfatal(fmt, ap);
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
        f.lin = i, f.lane = i % 32, f.warp = i / 32, f.done = 0, f.waiting = 0, f.started = 0;
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
        f.lin = i, f.lane = i % 32, f.warp = i / 32;
        (*B.body)();
    }
    B.cur = nullptr;
}

void warp_barrier(Warp &w, unsigned g, bool syncwarp = false) {
    if (++w.arrived == w.live) {
        w.arrived = 0;
        w.gen++;
        if (syncwarp) w.sync_gen++;
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
    warp_barrier(w, w.gen, true);
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

[[noreturn]] void emu_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfatal(fmt, ap);
}

std::mt19937 &emu_rng() { return g_rng; }

bool emu_current_thread(EmuThread *t) {
    if (!B.cur) return false;
    t->tid = B.cur->lin, t->warp = B.cur->warp, t->bar_gen = B.gen;
    t->warp_sync_gen = g_direct ? 0 : B.warps[B.cur->warp].sync_gen;
    return true;
}

void emu_launch_impl(dim3 grid, dim3 block, size_t smem, cudaStream_t stream, const char *name,
                     const std::function<void()> &body) {
    int64_t threads = (int64_t)block.x * block.y * block.z;
    if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.y > 65535 || grid.z > 65535 || threads < 1 || threads > 1024 ||
        smem > 227 * 1024) {
        fprintf(stderr, "CUDA emulator: %s: invalid launch grid (%u,%u,%u) block (%u,%u,%u) smem %zu\n", name, grid.x,
                grid.y, grid.z, block.x, block.y, block.z, smem);
        g_emu_last = cudaErrorInvalidConfiguration;
        return;
    }
    std::function<void()> b = body;
    emu_enqueue(stream, [grid, block, smem, name, b]() { emu_run_launch(grid, block, smem, name, b); });
}

void emu_run_launch(dim3 grid, dim3 block, size_t smem, const char *name, const std::function<void()> &body) {
    int64_t threads = (int64_t)block.x * block.y * block.z;
    g_kernel = name;
    emu_race_launch(name);
    g_grid = grid, g_block = block;
    B.n = (int)threads;
    B.body = &body;
    g_direct = false;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                B.bid = dim3(x, y, z);
                B.dyn.assign(smem ? smem : 1, 0xff);  // uninitialised shared memory reads as NaN
                emu_race_block(B.bid, B.dyn.data(), smem);
                long before = g_collectives;
                if (g_direct) {
                    run_block_direct();
                } else {
                    run_block();
                    // decided by the first block only: later blocks may exit early without a barrier (a grid sized
                    // for the largest case) while others of the same launch need them
                    if (x == 0 && y == 0 && z == 0) g_direct = g_collectives == before;
                }
                emu_race_block_end();
            }
    g_direct = false;
    g_kernel = "";
}
