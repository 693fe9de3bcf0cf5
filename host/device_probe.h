/* device_probe.h — what the GPU leaves for our arena, measured: the memory the CUDA context, a cuBLAS handle and
 * the loaded kernels take (the "CUDA context, cuBLAS, kernels" row of every --plan and of the inference engine's
 * start-up line), the free memory after them, and the memory bandwidth the card reports. Without a device the row
 * is the documented estimate DEVICE_CONTEXT_ESTIMATE. docs/cuda.md "Memory truth". */
#ifndef SC_DEVICE_PROBE_H
#define SC_DEVICE_PROBE_H

#include <stdint.h>

/* Without a device: the context + cuBLAS + lazily loaded kernels of a small card, from public measurements: about
 * 300 MiB once a CUDA >= 11.7 process with lazy loading has run its kernels (PyTorch maintainers,
 * pytorch/pytorch#107667, #109888 "around 400MB"); the bare context grows with the SM count (llama.cpp PR #23604:
 * 107 MiB on a 34-SM RTX 4060 Ti, 555 MiB on a 188-SM RTX PRO 6000), so the MX450's 14 SMs sit below that and
 * 300 MiB is the conservative figure DESIGN.md plans the 2 GiB card with (about 1.75 GiB usable). */
#define DEVICE_CONTEXT_ESTIMATE (300ll << 20)
/* Kept free below the measured free memory by the default --vram-budget: cuBLAS and the driver allocate a little
 * more on first use of some paths (per-stream state, CUDA graph instantiation), and a display may share the GPU. */
#define DEVICE_RESERVE (64ll << 20)

typedef struct device_probe_info {
    int measured;        /* 1: measured on the open device; 0: no device, the estimate */
    int64_t total;       /* device memory (0 without a device) */
    int64_t context;     /* total - free once the context exists: the context (and any other process on the GPU) */
    int64_t libs;        /* a cuBLAS handle + every kernel loaded by one warm-up launch (kernels/warmup.cu) */
    int64_t overhead;    /* context + libs: the row */
    int64_t free_now;    /* free memory now (after the warm-up; the probe's scratch and handle released) */
    double bandwidth;    /* bytes/s from the memory clock and bus width the card reports, 0 = unknown */
    char note[200];      /* how the row was obtained, for the plan */
} device_probe_info;

/* Measures on the current device the first time (creating the context, a cuBLAS handle, and one launch of every
 * kernel with attention at head_dim hd), then reuses the overhead and re-reads free_now. Without a device (or in a
 * build without kernels) fills the estimate and returns 0 as well; -1 only when the device fails. */
int device_probe(int hd, device_probe_info *out);
/* Tests: the next device_probe measures again (the emulator's simulated device changed). */
void device_probe_forget(void);
/* The estimate alone (no device touched): for plans of runs that will not use the GPU. */
void device_probe_estimate(device_probe_info *out);
/* The default device budget for an arena: free_now - DEVICE_RESERVE (0 without a device). */
int64_t device_probe_budget(const device_probe_info *p);
/* "312.4 MiB (measured: context 300.0 + cuBLAS and kernels 12.4)" */
const char *device_probe_describe(const device_probe_info *p, char *buf, int n);

#endif
