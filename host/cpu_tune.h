/* cpu_tune.h — start-up adjustments for the CPU libraries, called first thing in main(). */
#ifndef SC_CPU_TUNE_H
#define SC_CPU_TUNE_H

/* Debian's OpenBLAS (0.3.21) picks its AVX2 "Haswell" kernels on AMD Zen 4, which has AVX-512: sgemm runs at half
 * speed (measured 80 vs 160 GFLOP/s on 2 cores). The kernel is chosen when the library loads, before main(), so
 * when the CPU has AVX-512 and OpenBLAS chose an AVX2 core, this re-executes the program once with
 * OPENBLAS_CORETYPE=SkylakeX. A user's own OPENBLAS_CORETYPE is always respected. Returns only if no re-exec. */
void cpu_tune_openblas(char **argv);

#endif
