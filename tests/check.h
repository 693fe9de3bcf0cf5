/* check.h — the tiny assertion kit of the C tests: CHECK prints file:line and the condition, counts failures;
 * a test's main returns check_result(). */
#ifndef SC_CHECK_H
#define SC_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond)                                                                                                \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                               \
            check_failures++;                                                                                      \
        }                                                                                                          \
    } while (0)

/* CHECK with a printf-style message after the condition (the values that make a failure readable). */
#define CHECKF(cond, ...)                                                                                          \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);                               \
            fprintf(stderr, __VA_ARGS__);                                                                          \
            fputc('\n', stderr);                                                                                   \
            check_failures++;                                                                                      \
        }                                                                                                          \
    } while (0)

/* The call must fail and its message must contain `needle` (so errors stay specific). */
#define CHECK_FAILS_WITH(call, needle)                                                                             \
    do {                                                                                                           \
        if ((call) == 0) {                                                                                         \
            fprintf(stderr, "%s:%d: expected failure: %s\n", __FILE__, __LINE__, #call);                            \
            check_failures++;                                                                                      \
        } else if (!strstr(sc_error(), needle)) {                                                                  \
            fprintf(stderr, "%s:%d: error '%s' does not mention '%s'\n", __FILE__, __LINE__, sc_error(), needle);   \
            check_failures++;                                                                                      \
        }                                                                                                          \
    } while (0)

static inline int check_result(const char *name) {
    if (check_failures) fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
    else fprintf(stderr, "%s: all checks passed\n", name);
    return check_failures ? 1 : 0;
}

#endif
