/* cpu_tune.c — see cpu_tune.h. */
#include "host/cpu_tune.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int openblas_wants_avx512(void) {
#if defined(__x86_64__)
    if (getenv("OPENBLAS_CORETYPE")) return 0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return 0;
    const char *core = openblas_get_corename();
    return core && (strcasecmp(core, "Haswell") == 0 || strcasecmp(core, "Zen") == 0);
#else
    return 0;
#endif
}

void cpu_tune_startup(char **argv, int decodes) {
    if (getenv("SMALLCODER_TUNED")) return;  /* this process is the re-executed one (or the user opted out) */
    int changed = 0;
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) {
        if (decodes) setenv("GOMP_SPINCOUNT", "300", 1);
        else setenv("OMP_WAIT_POLICY", "passive", 1);
        changed = 1;
    }
    if (openblas_wants_avx512()) {
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
        changed = 1;
    }
    if (!changed) return;
    setenv("SMALLCODER_TUNED", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the settings we have */
}
