/* fileio.h — whole-file reads and crash-safe writes: data goes to "<path>.tmp.<pid>", is fsynced and renamed
 * over the target, so a reader never sees a half-written file and a crash leaves the old file intact. */
#ifndef SC_FILEIO_H
#define SC_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char *path;      /* final name */
    char *tmp_path;  /* where the bytes go until commit */
} sc_atomic_file;

int atomic_open(sc_atomic_file *af, const char *path);
/* Flushes, fsyncs, renames over path and fsyncs the directory. Closes in every case. */
int atomic_commit(sc_atomic_file *af);
/* Closes and removes the temporary file (on any error path). Safe to call twice. */
void atomic_abort(sc_atomic_file *af);
int atomic_write_file(const char *path, const void *data, size_t n);

/* Removes "<name>.tmp.<pid>" files in dir (names ending in ".kd.tmp.<pid>" etc.: `suffix` is the part before
 * ".tmp.", e.g. ".kd"; NULL = any) whose process is gone: what a killed writer leaves. Returns how many. */
int atomic_remove_stale(const char *dir, const char *suffix);

/* Opens path read-only as a regular file of at least header_size bytes (the binary formats' readers: shards, .kd):
 * the descriptor and the file's size in *size, or -1 with sc_error naming the path ("cannot open: <errno>", "not
 * a regular file", "truncated: N bytes, smaller than the M-byte header"). */
int file_open_sized(const char *path, uint64_t header_size, uint64_t *size);
/* Reads exactly n bytes of fd at offset off (path names it in errors), over EINTR and short reads: 0, or -1 with
 * sc_error "<path>: read failed at offset X: <errno>" or "<path>: truncated: expected n bytes at offset off". */
int file_pread_all(int fd, const char *path, void *buf, size_t n, uint64_t off);
/* Reads a whole file into a malloc'd, NUL-terminated buffer. */
int file_read_all(const char *path, char **data, size_t *len);
/* fsync a directory so a rename inside it is durable. */
int fsync_dir(const char *dir);
/* "dir/name" into buf; returns buf. */
char *path_join(char *buf, size_t size, const char *dir, const char *name);

#endif
