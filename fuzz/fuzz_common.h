/* fuzz_common.h — what the libFuzzer targets share: a private scratch directory per process (the parsers under
 * test read files by path, so each input is written to a file first) and whole-file writes. Targets see the
 * input exactly as a file on disk would hold it; nothing here repairs or filters it unless the target says so. */
#ifndef SC_FUZZ_COMMON_H
#define SC_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* LLVMFuzzerTestOneInput's declaration (libFuzzer provides main) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "<TMPDIR>/scfuzz-<pid>/<name>": one directory per process, so parallel jobs never share files. The directory is
 * made on first use; the files in it are overwritten by each input. */
static inline const char *fuzz_path(const char *name) {
    static char dir[512];
    static char path[1024];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/scfuzz-%d", t && t[0] ? t : "/tmp", (int)getpid());
        mkdir(dir, 0700);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static inline const char *fuzz_dir(void) {
    const char *p = fuzz_path("");
    static char d[1024];
    snprintf(d, sizeof d, "%s", p);
    d[strlen(d) - 1] = 0; /* drop the trailing '/' */
    return d;
}

/* Writes size bytes to path; aborts on failure (a full /tmp is the harness's problem, not a finding). */
static inline void fuzz_write(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s\n", path);
        abort();
    }
}

static inline uint32_t fuzz_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
