/* loader.c — shard directory → windows of T+1 tokens, random (training) or sequential (evaluation), with FIM;
 * see loader.h for the order and why its state is only (seed, position). */
#include "data/loader.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "data/shard.h"

struct loader {
    loader_options opt;
    char *dir, *split;
    int n_shards;
    shard_reader **shards;
    uint64_t *shard_start;      /* stream index of each shard's first token; [n_shards] = N */
    uint64_t total, docs, windows, slack;
    uint64_t hash;
    uint32_t vocab;
    uint64_t position;
    int half_bits;              /* Feistel domain = 2^(2*half_bits) >= windows */
    fim_stats fim;
};

/* splitmix64's finaliser over a combination of three words: the counter-based randomness of the loader. */
static uint64_t mix3(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t z = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull ^ c * 0x94d049bb133111ebull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A keyed bijection of [0, 2^(2h)): four Feistel rounds. */
static uint64_t feistel(uint64_t x, int h, uint64_t key) {
    uint64_t mask = (1ull << h) - 1, left = x >> h, right = x & mask;
    for (uint64_t round = 0; round < 4; round++) {
        uint64_t f = mix3(right, key, round) & mask;
        uint64_t t = right;
        right = left ^ f;
        left = t;
    }
    return left << h | right;
}

/* perm_key restricted to [0, n) by cycle walking: still a bijection; < 4 steps expected (domain < 4n). */
static uint64_t permute_index(uint64_t j, uint64_t n, int h, uint64_t key) {
    uint64_t x = j;
    do x = feistel(x, h, key);
    while (x >= n);
    return x;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Names DIR/<split>-*.tok in sorted order (temporary files end in .tmp.<pid> and never match). */
static int list_shards(const char *dir, const char *split, char ***names, int *count) {
    DIR *d = opendir(dir);
    if (!d) return sc_fail("%s: cannot open shard directory: %s", dir, strerror(errno));
    size_t plen = strlen(split), cap = 16;
    char **v = sc_malloc(cap * sizeof *v);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < plen + 5 || strncmp(e->d_name, split, plen) != 0 || e->d_name[plen] != '-' ||
            strcmp(e->d_name + len - 4, ".tok") != 0)
            continue;
        if ((size_t)n == cap) {
            char **nv = sc_malloc(2 * cap * sizeof *nv);
            memcpy(nv, v, cap * sizeof *nv);
            free(v);
            v = nv, cap *= 2;
        }
        size_t plen2 = strlen(dir) + len + 2;
        v[n] = sc_malloc(plen2);
        snprintf(v[n++], plen2, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *names = v;
    *count = n;
    return 0;
}

void loader_close(loader *l) {
    if (!l) return;
    for (int i = 0; i < l->n_shards; i++) shard_close(l->shards[i]);
    free(l->shards);
    free(l->shard_start);
    free(l->dir);
    free(l->split);
    free(l);
}

int loader_open(loader **out, const loader_options *opt) {
    *out = NULL;
    if (opt->seq_len < 1) return sc_fail("sequence length %d must be >= 1", opt->seq_len);
    if (fim_options_check(&opt->fim)) return -1;
    char **names = NULL;
    int n = 0;
    if (list_shards(opt->dir, opt->split, &names, &n)) return -1;
    loader *l = sc_calloc(1, sizeof *l);
    l->opt = *opt;
    l->dir = strdup(opt->dir);
    l->split = strdup(opt->split);
    l->opt.dir = l->dir, l->opt.split = l->split;
    l->shards = sc_calloc((size_t)(n ? n : 1), sizeof *l->shards);
    l->shard_start = sc_calloc((size_t)n + 1, sizeof *l->shard_start);
    int rc = 0;
    if (n == 0) rc = sc_fail("%s: no %s-*.tok shards", opt->dir, opt->split);
    for (int i = 0; i < n && rc == 0; i++) {
        if (shard_open(&l->shards[i], names[i])) {
            rc = -1;
            break;
        }
        l->n_shards = i + 1;
        const shard_header *h = shard_info(l->shards[i]);
        if (i == 0) {
            l->hash = h->tokenizer_hash, l->vocab = h->vocab_size;
        } else if (h->tokenizer_hash != l->hash) {
            rc = sc_fail("%s: made with tokenizer %016" PRIx64 " but %s with %016" PRIx64 ": shards of one directory must "
                         "share a tokenizer", names[i], h->tokenizer_hash, names[0], l->hash);
        } else if (h->vocab_size != l->vocab) {
            rc = sc_fail("%s: vocab size %u differs from %s (%u)", names[i], h->vocab_size, names[0], l->vocab);
        }
        if (rc == 0 && opt->tokenizer_hash && h->tokenizer_hash != opt->tokenizer_hash)
            rc = sc_fail("%s: made with tokenizer %016" PRIx64 ", but this model's tokenizer is %016" PRIx64
                         " (re-tokenize the corpus with the model's tokenizer.json)", names[i], h->tokenizer_hash, opt->tokenizer_hash);
        l->shard_start[i + 1] = l->shard_start[i] + h->token_count;
        l->docs += h->doc_count;
    }
    if (rc == 0) {
        l->total = l->shard_start[n];
        if (l->total < (uint64_t)opt->seq_len + 1)
            rc = sc_fail("%s: the %s split holds %" PRIu64 " tokens, fewer than one window of %d + 1", opt->dir,
                         opt->split, l->total, opt->seq_len);
    }
    if (rc == 0 && opt->fim.rate > 0) {
        const fim_tokens *t = &opt->fim.ids;
        int32_t ids[6] = {t->prefix, t->middle, t->suffix, t->pad, t->eot, opt->fim.bos};
        for (int k = 0; k < 6; k++)
            if (ids[k] >= 0 && (uint32_t)ids[k] >= l->vocab)
                rc = sc_fail("%s: FIM token id %d is outside the shards' vocabulary (%u)", opt->dir, ids[k], l->vocab);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc) {
        loader_close(l);
        return -1;
    }
    l->windows = (l->total - 1) / (uint64_t)opt->seq_len;
    l->slack = (l->total - 1) - l->windows * (uint64_t)opt->seq_len;
    int bits = 1;
    while (bits < 64 && (l->windows - 1) >> bits) bits++;
    l->half_bits = (bits + 1) / 2;
    *out = l;
    return 0;
}

uint64_t loader_window_start(const loader *l, uint64_t position) {
    uint64_t T = (uint64_t)l->opt.seq_len;
    if (l->opt.order == LOADER_SEQUENTIAL) return (position % l->windows) * T;
    uint64_t epoch = position / l->windows, j = position % l->windows;
    uint64_t shift = mix3(l->opt.seed, epoch, 2) % (l->slack + 1);
    return shift + permute_index(j, l->windows, l->half_bits, mix3(l->opt.seed, epoch, 1)) * T;
}

int loader_read_tokens(loader *l, uint64_t start, size_t n, int32_t *out) {
    if (start > l->total || n > l->total - start)
        return sc_fail("%s: tokens [%" PRIu64 ", %" PRIu64 ") out of range (%" PRIu64 ")", l->dir, start, start + n, l->total);
    while (n > 0) {
        int lo = 0, hi = l->n_shards - 1;  /* last shard whose start <= start */
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (l->shard_start[mid] <= start) lo = mid;
            else hi = mid - 1;
        }
        uint64_t off = start - l->shard_start[lo], avail = l->shard_start[lo + 1] - start;
        size_t k = avail < n ? (size_t)avail : n;
        if (k == 0) {  /* an empty shard: move on */
            lo++;
            continue;
        }
        if (shard_read_tokens(l->shards[lo], off, k, out)) return -1;
        out += k, start += k, n -= k;
    }
    return 0;
}

int loader_window_at(loader *l, uint64_t position, int32_t *out) {
    size_t len = (size_t)l->opt.seq_len + 1;
    if (loader_read_tokens(l, loader_window_start(l, position), len, out)) return -1;
    if (l->opt.fim.rate > 0 && fim_apply(&l->opt.fim, out, len, mix3(l->opt.seed, position, 3), &l->fim))
        return sc_fail_prefix("%s", l->dir);
    return 0;
}

int loader_next(loader *l, int32_t *out) {
    if (loader_window_at(l, l->position, out)) return -1;
    l->position++;
    return 0;
}

uint64_t loader_windows_per_epoch(const loader *l) { return l->windows; }
uint64_t loader_total_tokens(const loader *l) { return l->total; }
uint64_t loader_documents(const loader *l) { return l->docs; }
int loader_shard_count(const loader *l) { return l->n_shards; }
uint64_t loader_tokenizer_hash(const loader *l) { return l->hash; }
uint32_t loader_vocab_size(const loader *l) { return l->vocab; }
const fim_stats *loader_fim_stats(const loader *l) { return &l->fim; }

loader_state loader_get_state(const loader *l) {
    loader_state s = {l->opt.seed, l->position, l->total, l->hash, l->opt.seq_len, l->opt.order};
    return s;
}

int loader_set_state(loader *l, const loader_state *s) {
    if (s->total_tokens != l->total || s->tokenizer_hash != l->hash)
        return sc_fail("%s: the saved data position refers to %" PRIu64 " %s tokens (tokenizer %016" PRIx64 "), this "
                       "directory holds %" PRIu64 " (tokenizer %016" PRIx64 "): not the same shards", l->dir,
                       s->total_tokens, l->split, s->tokenizer_hash, l->total, l->hash);
    if (s->seq_len != l->opt.seq_len)
        return sc_fail("%s: the saved data position is for windows of %d tokens, not %d", l->dir, s->seq_len, l->opt.seq_len);
    if (s->order != l->opt.order) return sc_fail("%s: the saved data position is for another window order", l->dir);
    l->opt.seed = s->seed;
    l->position = s->position;
    return 0;
}

cJSON *loader_state_to_json(const loader_state *s) {
    char buf[32];
    cJSON *j = cJSON_CreateObject();
    snprintf(buf, sizeof buf, "%" PRIu64, s->seed);
    cJSON_AddStringToObject(j, "seed", buf);
    snprintf(buf, sizeof buf, "%" PRIu64, s->position);
    cJSON_AddStringToObject(j, "position", buf);
    snprintf(buf, sizeof buf, "%" PRIu64, s->total_tokens);
    cJSON_AddStringToObject(j, "total_tokens", buf);
    snprintf(buf, sizeof buf, "%016" PRIx64, s->tokenizer_hash);
    cJSON_AddStringToObject(j, "tokenizer_hash", buf);
    cJSON_AddNumberToObject(j, "seq_len", s->seq_len);
    cJSON_AddStringToObject(j, "order", s->order == LOADER_SEQUENTIAL ? "sequential" : "random");
    return j;
}

static int json_u64(const cJSON *j, const char *key, int base, uint64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(v) || !v->valuestring[0]) return sc_fail("data state: \"%s\" missing or not a string", key);
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v->valuestring, &end, base);
    if (*end || errno || v->valuestring[0] == '-') return sc_fail("data state: \"%s\" is not a number: %s", key, v->valuestring);
    *out = x;
    return 0;
}

int loader_state_from_json(const cJSON *j, loader_state *s) {
    memset(s, 0, sizeof *s);
    if (!cJSON_IsObject(j)) return sc_fail("data state: not a JSON object");
    if (json_u64(j, "seed", 10, &s->seed) || json_u64(j, "position", 10, &s->position) ||
        json_u64(j, "total_tokens", 10, &s->total_tokens) || json_u64(j, "tokenizer_hash", 16, &s->tokenizer_hash))
        return -1;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "seq_len");
    if (!cJSON_IsNumber(t) || t->valuedouble < 1 || t->valuedouble > 1e9 || t->valuedouble != (int)t->valuedouble)
        return sc_fail("data state: \"seq_len\" missing or not a positive integer");
    s->seq_len = (int)t->valuedouble;
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "order");
    if (cJSON_IsString(o) && strcmp(o->valuestring, "random") == 0) s->order = LOADER_RANDOM;
    else if (cJSON_IsString(o) && strcmp(o->valuestring, "sequential") == 0) s->order = LOADER_SEQUENTIAL;
    else return sc_fail("data state: \"order\" must be \"random\" or \"sequential\"");
    return 0;
}
