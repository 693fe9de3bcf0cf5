// emu_internal.h — what the emulator's own files share (kernels never see it): emu_runtime.cpp runs launches
// (fibers, barriers), emu_stream.cpp queues work on streams and runs it in a random order that honours the
// dependencies, emu_racecheck.cpp watches shared memory for accesses no barrier orders.
#ifndef SC_CUDA_EMU_INTERNAL_H
#define SC_CUDA_EMU_INTERNAL_H

#include "tests/gpu/emu/cuda_emu.h"

#include <random>

// emu_runtime.cpp
void emu_run_launch(dim3 grid, dim3 block, size_t smem, const char *name, const std::function<void()> &body);
[[noreturn]] void emu_fatal(const char *fmt, ...);
std::mt19937 &emu_rng();
// the running CUDA thread: linear index in its block, its warp, block barriers and __syncwarp()s completed so
// far (by its block, by its warp); false outside a kernel
struct EmuThread {
    int tid, warp;
    unsigned bar_gen, warp_sync_gen;
};
bool emu_current_thread(EmuThread *t);

// emu_stream.cpp
void emu_enqueue(cudaStream_t s, std::function<void()> op);  // runs at the next synchronisation
void emu_flush();                                             // runs everything queued
extern cudaError_t g_emu_last;                                // cudaGetLastError's

// emu_racecheck.cpp: the runtime announces launches and blocks; the instrumented kernels report accesses
void emu_race_launch(const char *name);
void emu_race_block(dim3 bid, void *dyn, size_t dyn_bytes);
void emu_race_block_end();

#endif
