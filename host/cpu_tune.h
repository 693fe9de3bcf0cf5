/* cpu_tune.h — start-up settings for the CPU libraries, applied first thing in main(). Both are read by the
 * libraries when they load, before main() runs, so when one needs changing the program re-executes itself once
 * with the variables set. A variable the user (or the machine) already set is always respected. */
#ifndef SC_CPU_TUNE_H
#define SC_CPU_TUNE_H

/* 1. OMP_WAIT_POLICY=passive: OpenMP's idle threads otherwise spin between parallel loops while OpenBLAS's own
 *    (pthreads) threads run the GEMMs, and the two pools fight over the cores: perf showed 65% of cycles in the
 *    OpenMP spin loop and 11% in sgemm; passive waiting made CPU training 2-6x faster on 2 cores.
 *    A decoding command (decodes = 1: its flag in smallcoder.c's table) gets GOMP_SPINCOUNT=300 instead: spin a
 *    few microseconds (about the serial gap between two of a decode step's ~90 parallel loops), then sleep. INT8
 *    decode runs no OpenBLAS, and on an idle machine a futex wake-up per loop cost 19% of its time (session 2:
 *    passive 50 -> 70 tok/s with 10000). On a loaded machine a long spin burns the spinning thread's time slice
 *    while the thread it waits for is preempted: at load 21-23 (2 cores), 304m decode ran 8.5-10.9 tok/s with
 *    10000, 42-56 with 300, 42-47 with 1000, 38-82 passive (same binary, alternating).
 *    OMP_WAIT_POLICY or GOMP_SPINCOUNT set by the user wins.
 * 2. OPENBLAS_CORETYPE=SkylakeX on CPUs with AVX-512 where OpenBLAS chose its AVX2 kernels (Debian's 0.3.21 does
 *    on AMD Zen 4): sgemm runs at twice the speed (80 -> 160 GFLOP/s on 2 cores). */
void cpu_tune_startup(char **argv, int decodes);

#endif
