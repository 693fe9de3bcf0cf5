/* error.c — thread-local error message and checked allocation. */
#include "host/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char sc_message[1024];

int sc_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sc_message, sizeof sc_message, fmt, ap);
    va_end(ap);
    return -1;
}

int sc_fail_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof sc_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, sc_message, sizeof old);
    snprintf(sc_message, sizeof sc_message, "%s: %s", prefix, old);
    return -1;
}

const char *sc_error(void) { return sc_message[0] ? sc_message : "unknown error"; }

void *sc_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "smallcoder: out of memory allocating %zu bytes\n", n);
        exit(1);
    }
    return p;
}

void *sc_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "smallcoder: out of memory allocating %zu x %zu bytes\n", count, size);
        exit(1);
    }
    return p;
}
