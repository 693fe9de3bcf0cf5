/* data_source.c — adapts data/loader.h to the trainer's batch_source (see data_source.h). The loader's state is
 * (seed, position) plus what identifies the shards, so resume and evaluation restarts are exact. */
#include "train/data_source.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <string.h>

#include "host/error.h"
#include "data/loader.h"

static int ds_next(void *ctx, int32_t *out) { return loader_next(ctx, out); }

static int ds_rewind(void *ctx) {
    loader_state s = loader_get_state(ctx);
    s.position = 0;
    return loader_set_state(ctx, &s);
}

static uint64_t ds_windows(void *ctx) { return loader_windows_per_epoch(ctx); }

static cJSON *ds_state_to_json(void *ctx) {
    loader_state s = loader_get_state(ctx);
    return loader_state_to_json(&s);
}

static int ds_state_from_json(void *ctx, const cJSON *j) {
    loader_state s;
    if (loader_state_from_json(j, &s)) return -1;
    return loader_set_state(ctx, &s);
}

static void ds_close(void *ctx) { loader_close(ctx); }

int data_source_open(batch_source *s, const char *dir, const char *split, int seq, int random, uint64_t seed,
                     uint64_t tokenizer_hash, const fim_options *fim) {
    memset(s, 0, sizeof *s);
    loader_options o;
    memset(&o, 0, sizeof o);
    o.dir = dir;
    o.split = split;
    o.seq_len = seq;
    o.order = random ? LOADER_RANDOM : LOADER_SEQUENTIAL;
    o.seed = seed;
    o.tokenizer_hash = tokenizer_hash;
    if (fim && fim->rate > 0) o.fim = *fim;
    loader *l;
    if (loader_open(&l, &o)) return -1;
    s->ctx = l;
    s->seq = seq;
    s->vocab_size = loader_vocab_size(l);
    s->ignore_id = fim && fim->rate > 0 ? fim->ids.pad : -1;
    s->next = ds_next;
    s->rewind = ds_rewind;
    s->windows = ds_windows;
    s->state_to_json = ds_state_to_json;
    s->state_from_json = ds_state_from_json;
    s->close = ds_close;
    return 0;
}

int data_source_has_split(const char *dir, const char *split) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t pl = strlen(split);
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        found = len > pl + 4 && strncmp(e->d_name, split, pl) == 0 && e->d_name[pl] == '-' &&
                strcmp(e->d_name + len - 4, ".tok") == 0;
    }
    closedir(d);
    return found;
}

uint64_t data_source_tokens(const batch_source *s) { return loader_total_tokens(s->ctx); }
uint64_t data_source_tokenizer_hash(const batch_source *s) { return loader_tokenizer_hash(s->ctx); }
struct loader *data_source_loader(const batch_source *s) { return s->ctx; }
