/* cpu_tune.c — see cpu_tune.h. */
#include "cpu_tune.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void cpu_tune_openblas(char **argv) {
#if defined(__x86_64__)
    if (getenv("OPENBLAS_CORETYPE")) return;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return;
    const char *core = openblas_get_corename();
    if (!core || (strcasecmp(core, "Haswell") != 0 && strcasecmp(core, "Zen") != 0)) return;
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the kernels we have */
#else
    (void)argv;
#endif
}
