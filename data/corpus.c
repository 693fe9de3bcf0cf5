/* corpus.c — deterministic recursive file walk and content classification for `smallcoder tokenize`. */
#include "data/corpus.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "host/error.h"
#include "data/utf8.h"

int corpus_filter_parse_exts(corpus_filter *f, const char *spec) {
    corpus_filter_free(f);
    if (strcmp(spec, "*") == 0) return 0;  /* every file */
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ')) p++, len--;
        while (len && p[len - 1] == ' ') len--;
        if (len == 0) {
            corpus_filter_free(f);
            return sc_fail("--ext: empty extension in '%s'", spec);
        }
        char **nv = sc_malloc((size_t)(f->n_exts + 1) * sizeof *nv);
        if (f->n_exts) memcpy(nv, f->exts, (size_t)f->n_exts * sizeof *nv);
        free(f->exts);
        f->exts = nv;
        char *e = sc_malloc(len + 2);
        size_t k = 0;
        if (*p != '.') e[k++] = '.';
        memcpy(e + k, p, len);
        e[k + len] = 0;
        f->exts[f->n_exts++] = e;
        p += len;
        while (*p == ' ') p++;
        if (*p == ',') p++;
    }
    return 0;
}

void corpus_filter_free(corpus_filter *f) {
    for (int i = 0; i < f->n_exts; i++) free(f->exts[i]);
    free(f->exts);
    f->exts = NULL;
    f->n_exts = 0;
}

static int ext_ok(const corpus_filter *f, const char *name) {
    if (!f || f->n_exts == 0) return 1;
    size_t n = strlen(name);
    for (int i = 0; i < f->n_exts; i++) {
        size_t e = strlen(f->exts[i]);
        if (n > e && strcasecmp(name + n - e, f->exts[i]) == 0) return 1;
    }
    return 0;
}

static void list_add(corpus_list *l, const char *path, uint64_t size) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        corpus_file *nf = sc_malloc(cap * sizeof *nf);
        if (l->n) memcpy(nf, l->files, l->n * sizeof *nf);
        free(l->files);
        l->files = nf, l->cap = cap;
    }
    l->files[l->n].path = strdup(path);
    l->files[l->n++].size = size;
    l->total_bytes += size;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A regular file (possibly through a symlink) is filtered and listed. */
static void visit_file(corpus_list *l, const char *path, const struct stat *st, const corpus_filter *f) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!ext_ok(f, base)) l->skipped_ext++;
    else if (f && f->max_file_size && (uint64_t)st->st_size > f->max_file_size) l->skipped_large++;
    else list_add(l, path, (uint64_t)st->st_size);
}

static void walk_dir(corpus_list *l, const char *dir, const corpus_filter *f) {
    DIR *d = opendir(dir);
    if (!d) {
        l->skipped_unreadable++;
        return;
    }
    size_t n = 0, cap = 64;
    char **names = sc_malloc(cap * sizeof *names);
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n == cap) {
            char **nn = sc_malloc(2 * cap * sizeof *nn);
            memcpy(nn, names, n * sizeof *nn);
            free(names);
            names = nn, cap *= 2;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    size_t dl = strlen(dir);
    for (size_t i = 0; i < n; i++) {
        size_t len = dl + strlen(names[i]) + 2;
        char *path = sc_malloc(len);
        snprintf(path, len, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", names[i]);
        struct stat lst, st;
        if (names[i][0] == '.') {
            l->skipped_other++;   /* hidden: .git, .venv, editor files; tooling, not corpus */
        } else if (lstat(path, &lst) != 0) {
            l->skipped_unreadable++;
        } else if (S_ISDIR(lst.st_mode)) {
            walk_dir(l, path, f);
        } else if (S_ISLNK(lst.st_mode)) {
            if (stat(path, &st) != 0) l->skipped_unreadable++;         /* dangling */
            else if (S_ISREG(st.st_mode)) visit_file(l, path, &st, f);
            else l->skipped_other++;                                   /* symlinked directory: may cycle */
        } else if (S_ISREG(lst.st_mode)) {
            visit_file(l, path, &lst, f);
        } else {
            l->skipped_other++;
        }
        free(path);
        free(names[i]);
    }
    free(names);
}

int corpus_walk(corpus_list *l, char *const *paths, int npaths, const corpus_filter *f) {
    for (int i = 0; i < npaths; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) return sc_fail("%s: %s", paths[i], strerror(errno));
        if (S_ISDIR(st.st_mode)) walk_dir(l, paths[i], f);
        else if (S_ISREG(st.st_mode)) visit_file(l, paths[i], &st, f);
        else return sc_fail("%s: not a regular file or directory", paths[i]);
    }
    return 0;
}

void corpus_list_free(corpus_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->files[i].path);
    free(l->files);
    memset(l, 0, sizeof *l);
}

corpus_kind corpus_classify(const char *data, size_t n) {
    if (n == 0) return CORPUS_EMPTY;
    if (memchr(data, 0, n)) return CORPUS_BINARY;
    if (utf8_valid_prefix(data, n) != n) return CORPUS_NOT_UTF8;
    return CORPUS_TEXT;
}
