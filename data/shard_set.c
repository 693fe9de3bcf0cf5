/* shard_set.c — see shard_set.h. */
#include "data/shard_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/error.h"

struct shard_set {
    char *dir, *split;
    shard_writer_options opt;
    uint64_t shard_tokens;
    shard_writer *w;          /* shard in progress, or NULL */
    char **done;              /* committed shard paths */
    int n_done;
    uint64_t tokens, docs, bytes;
};

shard_set *shard_set_create(const char *dir, const char *split, const shard_writer_options *opt, uint64_t shard_tokens) {
    shard_set *s = sc_calloc(1, sizeof *s);
    s->dir = strdup(dir);
    s->split = strdup(split);
    s->opt = *opt;
    s->shard_tokens = shard_tokens ? shard_tokens : UINT64_MAX;
    return s;
}

static char *shard_name(const shard_set *s, int index) {
    size_t n = strlen(s->dir) + strlen(s->split) + 32;
    char *p = sc_malloc(n);
    snprintf(p, n, "%s/%s-%05d.tok", s->dir, s->split, index);
    return p;
}

int shard_set_add_document(shard_set *s, const int32_t *ids, size_t n, int32_t eot) {
    if (!s->w) {
        char *path = shard_name(s, s->n_done);
        int rc = shard_writer_open(&s->w, path, &s->opt);
        free(path);
        if (rc) return -1;
    }
    if (shard_writer_append(s->w, ids, n, 0) || shard_writer_append(s->w, &eot, 1, 1)) return -1;
    s->tokens += n + 1;
    s->docs++;
    if (shard_writer_tokens(s->w) >= s->shard_tokens) return shard_set_finish(s);
    return 0;
}

int shard_set_finish(shard_set *s) {
    if (!s->w) return 0;
    char *path = shard_name(s, s->n_done);
    shard_writer *w = s->w;
    s->w = NULL;
    if (shard_writer_close(w)) {
        free(path);
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0) s->bytes += (uint64_t)st.st_size;
    char **nd = sc_malloc((size_t)(s->n_done + 1) * sizeof *nd);
    if (s->n_done) memcpy(nd, s->done, (size_t)s->n_done * sizeof *nd);
    free(s->done);
    s->done = nd;
    s->done[s->n_done++] = path;
    return 0;
}

void shard_set_discard(shard_set *s) {
    shard_writer_abort(s->w);
    s->w = NULL;
    for (int i = 0; i < s->n_done; i++) unlink(s->done[i]);
}

void shard_set_free(shard_set *s) {
    if (!s) return;
    shard_writer_abort(s->w);
    for (int i = 0; i < s->n_done; i++) free(s->done[i]);
    free(s->done);
    free(s->dir);
    free(s->split);
    free(s);
}

uint64_t shard_set_tokens(const shard_set *s) { return s->tokens; }
uint64_t shard_set_documents(const shard_set *s) { return s->docs; }
int shard_set_files(const shard_set *s) { return s->n_done; }
uint64_t shard_set_bytes(const shard_set *s) { return s->bytes; }
