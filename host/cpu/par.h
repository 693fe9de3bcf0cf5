/* par.h — when a CPU op loop is worth an OpenMP team. Waking the team costs microseconds on an idle machine and
 * up to a scheduler time slice on a busy one, so loops touching fewer than PAR_MIN_WORK values (decode steps with
 * T = 1, tests with tiny shapes) stay on the calling thread: `#pragma omp parallel for if (PAR(n))`. The choice
 * depends only on the shape, so results stay deterministic for a given thread count. */
#ifndef SC_CPU_PAR_H
#define SC_CPU_PAR_H

#define PAR_MIN_WORK 32768
#define PAR(work) ((int64_t)(work) >= PAR_MIN_WORK)

#endif
