/* threads.c — see threads.h. */
#include "host/threads.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

int sc_set_threads(int n) {
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}
