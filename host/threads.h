/* threads.h — one knob for OpenMP and OpenBLAS thread counts. */
#ifndef SC_THREADS_H
#define SC_THREADS_H

/* n <= 0: all cores. Returns the count in effect. */
int sc_set_threads(int n);

#endif
