/* kd_dir.c — shard listing and .kd naming (see kd_dir.h). */
#include <stddef.h>

#include "distill/kd_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"

static int kd_name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int kd_dir_list_shards(const char *dir, const char *split, char ***names) {
    *names = NULL;
    DIR *d = opendir(dir);
    if (!d) return sc_fail("%s: cannot open directory: %s", dir, strerror(errno));
    int all = strcmp(split, "all") == 0, n = 0, cap = 16;
    size_t pl = strlen(split);
    char **v = sc_malloc(sizeof(char *) * (size_t)cap);
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || strcmp(e->d_name + len - 4, ".tok") != 0) continue;
        if (!all && !(len > pl + 4 && strncmp(e->d_name, split, pl) == 0 && e->d_name[pl] == '-')) continue;
        if (n == cap) v = realloc(v, sizeof(char *) * (size_t)(cap *= 2));
        if (!v) return sc_fail("out of memory");
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof(char *), kd_name_cmp);
    *names = v;
    return n;
}

void kd_dir_free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

char *kd_dir_kd_path(char *buf, size_t size, const char *kd_dir, const char *shard_name) {
    size_t len = strlen(shard_name);
    snprintf(buf, size, "%s/%.*s.kd", kd_dir, (int)(len > 4 ? len - 4 : len), shard_name);
    return buf;
}
