/* token_ids.c — see token_ids.h. */
#include "data/token_ids.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/fileio.h"

static int read_stdin(char **text, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = sc_malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
        n += got;
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return sc_fail("stdin: out of memory");
            }
            buf = nb;
        }
    }
    buf[n] = 0;
    *text = buf;
    *len = n;
    return 0;
}

int token_ids_read(const char *path, int vocab_size, int32_t **ids, size_t *n) {
    char *text;
    size_t len;
    if (strcmp(path, "-") == 0 ? read_stdin(&text, &len) : file_read_all(path, &text, &len)) return -1;
    size_t cap = 1024, count = 0;
    int32_t *out = sc_malloc(cap * sizeof(int32_t));
    const char *p = text, *end = text + len;
    int rc = 0;
    while (p < end) {
        while (p < end && isspace((unsigned char)*p)) p++;
        if (p >= end) break;
        const char *start = p;
        while (p < end && !isspace((unsigned char)*p)) p++;
        char word[32];
        size_t wl = (size_t)(p - start);
        snprintf(word, sizeof word, "%.*s%s", (int)(wl < 20 ? wl : 20), start, wl > 20 ? "..." : "");
        char *stop;
        errno = 0;
        long v = wl < 20 ? strtol(start, &stop, 10) : 0;
        if (wl >= 20 || stop != p || errno) {
            rc = sc_fail("%s: token %zu '%s' is not an integer id", path, count, word);
            break;
        }
        if (v < 0 || v >= vocab_size) {
            rc = sc_fail("%s: token %zu has id %ld, outside the vocabulary [0, %d)", path, count, v, vocab_size);
            break;
        }
        if (count == cap) out = realloc(out, (cap *= 2) * sizeof(int32_t));
        if (!out) {
            rc = sc_fail("%s: out of memory", path);
            break;
        }
        out[count++] = (int32_t)v;
    }
    free(text);
    if (rc) {
        free(out);
        return -1;
    }
    *ids = out;
    *n = count;
    return 0;
}
