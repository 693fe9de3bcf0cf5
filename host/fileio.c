/* fileio.c — see fileio.h. */
#include "host/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/error.h"

int atomic_open(sc_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    af->path = strdup(path);
    size_t n = strlen(path) + 32;
    af->tmp_path = sc_malloc(n);
    snprintf(af->tmp_path, n, "%s.tmp.%d", path, (int)getpid());
    af->f = fopen(af->tmp_path, "wb");
    if (!af->f) {
        int e = errno;
        free(af->path), free(af->tmp_path);
        af->path = af->tmp_path = NULL;
        return sc_fail("%s: cannot create (%s)", path, strerror(e));
    }
    return 0;
}

int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return sc_fail("%s: cannot open directory (%s)", dir, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? 0 : sc_fail("%s: fsync failed (%s)", dir, strerror(errno));
}

int atomic_commit(sc_atomic_file *af) {
    if (!af->f) return sc_fail("%s: not open", af->path ? af->path : "?");
    int rc = 0;
    errno = 0;
    if (fflush(af->f) != 0 || ferror(af->f) || fsync(fileno(af->f)) != 0) /* errno 0: an earlier buffered write */
        rc = sc_fail("%s: write failed (%s)", af->path, errno ? strerror(errno) : "an earlier write failed");
    if (fclose(af->f) != 0 && rc == 0) rc = sc_fail("%s: close failed (%s)", af->path, strerror(errno));
    af->f = NULL;
    if (rc == 0 && rename(af->tmp_path, af->path) != 0)
        rc = sc_fail("%s: rename from %s failed (%s)", af->path, af->tmp_path, strerror(errno));
    if (rc == 0) {
        char *copy = strdup(af->path);
        rc = fsync_dir(dirname(copy));
        free(copy);
    } else {
        unlink(af->tmp_path);
    }
    free(af->path), free(af->tmp_path);
    af->path = af->tmp_path = NULL;
    return rc;
}

void atomic_abort(sc_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->path), free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

int atomic_write_file(const char *path, const void *data, size_t n) {
    sc_atomic_file af;
    if (atomic_open(&af, path)) return -1;
    if (fwrite(data, 1, n, af.f) != n) {
        int e = errno;
        atomic_abort(&af);
        return sc_fail("%s: write failed (%s)", path, strerror(e));
    }
    return atomic_commit(&af);
}

/* the pid of a "*.tmp.<pid>" name whose writer is dead, else 0 */
static long stale_temp_pid(const char *name, const char *suffix) {
    const char *t = strstr(name, ".tmp.");
    if (!t) return 0;
    while (strstr(t + 1, ".tmp.")) t = strstr(t + 1, ".tmp."); /* the last one */
    size_t k = suffix ? strlen(suffix) : 0;
    if (suffix && ((size_t)(t - name) < k || strncmp(t - k, suffix, k) != 0)) return 0;
    char *end;
    errno = 0;
    long pid = strtol(t + 5, &end, 10);
    if (t[5] < '0' || t[5] > '9' || *end || errno || pid <= 0 || pid > 0x7fffffffL) return 0;
    if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) return 0;
    return pid;
}

int atomic_remove_stale(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)))
        if (stale_temp_pid(e->d_name, suffix) && unlink(path_join(p, sizeof p, dir, e->d_name)) == 0) n++;
    closedir(d);
    return n;
}

int file_read_all(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return sc_fail("%s: cannot open (%s)", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = sc_malloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return sc_fail("%s: out of memory reading", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return sc_fail("%s: read error", path);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

char *path_join(char *buf, size_t size, const char *dir, const char *name) {
    size_t dl = strlen(dir);
    if (dl && dir[dl - 1] == '/') snprintf(buf, size, "%s%s", dir, name);
    else snprintf(buf, size, "%s/%s", dir, name);
    return buf;
}

int file_open_sized(const char *path, uint64_t header_size, uint64_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sc_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sc_fail("%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size < header_size) {
        close(fd);
        return sc_fail("%s: truncated: %lld bytes, smaller than the %llu-byte header", path, (long long)st.st_size,
                       (unsigned long long)header_size);
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

int file_pread_all(int fd, const char *path, void *buf, size_t n, uint64_t off) {
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return sc_fail("%s: read failed at offset %llu: %s", path, (unsigned long long)(off + done), strerror(errno));
        if (k == 0) return sc_fail("%s: truncated: expected %zu bytes at offset %llu", path, n, (unsigned long long)off);
        done += (size_t)k;
    }
    return 0;
}
