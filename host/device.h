/* device.h — CUDA device detection for the commands: is there a GPU, what is it, how much memory is free, and
 * what --device cpu|cuda|auto resolves to. In a build without CUDA every function reports no device. */
#ifndef SC_DEVICE_H
#define SC_DEVICE_H

#include <stddef.h>

/* Number of usable CUDA devices: 0 when built without CUDA, without a driver, or with no GPU. */
int device_count(void);
/* One line about device dev, e.g. "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB, 132 SMs)"; returns -1 (sc_error) if
 * there is no such device. */
int device_describe(int dev, char *buf, size_t n);
/* Free and total memory of the current device; -1 (sc_error) without one. */
int device_memory(size_t *free_bytes, size_t *total_bytes);
/* Resolves a --device value: 1 = run on CUDA, 0 = run on the CPU, -1 = error (sc_error says why: a bad value,
 * or cuda asked for where this build or machine has none). "auto" means CUDA when auto_prefers_cuda and a device
 * exists, else the CPU. */
int device_resolve(const char *device, int auto_prefers_cuda);

/* --device as an SC_ARG_ENUM: {DEVICE_AUTO, device_names} */
enum { DEVICE_CPU, DEVICE_CUDA, DEVICE_AUTO };
extern const char *const device_names[]; /* "cpu", "cuda", "auto", NULL */

#endif
