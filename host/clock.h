/* clock.h — the one monotonic clock of the program (timings, progress lines, rates) and the calling thread's CPU
 * clock: seconds as a double. */
#ifndef SC_CLOCK_H
#define SC_CLOCK_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC): only differences mean something. */
double clock_now(void);

/* Seconds of CPU the calling thread has used (CLOCK_THREAD_CPUTIME_ID): leaves out the time it was preempted. */
double clock_thread_cpu(void);

#endif
