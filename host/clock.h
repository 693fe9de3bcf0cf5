/* clock.h — the one monotonic clock of the program (timings, progress lines, rates): seconds as a double. */
#ifndef SC_CLOCK_H
#define SC_CLOCK_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC): only differences mean something. */
double clock_now(void);

#endif
