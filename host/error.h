/* error.h — one error message per thread, set where a failure is detected and printed by the command.
 * Functions return a negative code and call sc_fail("file: field ... expected ..."); callers pass it up. */
#ifndef SC_ERROR_H
#define SC_ERROR_H

#if defined(__GNUC__)
#define SC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SC_PRINTF(a, b)
#endif

/* Formats the message for this thread and returns -1, so `return sc_fail(...)` reads naturally. */
int sc_fail(const char *fmt, ...) SC_PRINTF(1, 2);
/* Prepends "prefix: " to the current message (adds context such as a file name on the way up). */
int sc_fail_prefix(const char *fmt, ...) SC_PRINTF(1, 2);
const char *sc_error(void);

/* Allocation that never returns NULL: prints and exits on failure (out of memory is not recoverable here). */
#include <stddef.h>
void *sc_malloc(size_t n);
void *sc_calloc(size_t count, size_t size);

#endif
