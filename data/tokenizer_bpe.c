/* tokenizer_bpe.c — BPE of one pre-token, exactly as HF's Word::merge_all (always merge the adjacent pair with
 * the lowest (rank, position)), plus the per-thread word cache that makes encoding fast: code repeats its
 * words, so most pre-tokens are a single hash lookup. Each thread owns its cache; nothing is shared. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer_internal.h"

void idvec_push(id_vec *v, int32_t id) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 256;
        v->v = realloc(v->v, v->cap * sizeof *v->v);
        if (!v->v) sc_malloc((size_t)-1);
    }
    v->v[v->n++] = id;
}

typedef struct {
    int32_t id, prev, next; /* id -1: merged into its left neighbour */
} bpe_sym;

/* min-heap of (rank << 32 | pos): pops the lowest rank, the leftmost position among equal ranks */
static void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], v = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
    return top;
}

void tokenizer_bpe_merge(const sc_tokenizer *tok, const uint8_t *w, size_t n, id_vec *out) {
    bpe_sym small_sym[64];
    uint64_t small_heap[128];
    bpe_sym *sym = n <= 64 ? small_sym : sc_malloc(n * sizeof *sym);
    /* every merge pushes at most two entries and removes one symbol: n + 2n bounds the heap */
    uint64_t *heap = n <= 40 ? small_heap : sc_malloc(3 * n * sizeof *heap + 8);
    size_t ns = 0, nh = 0;

    /* initial symbols: one per byte; unknown bytes become unk (fused if fuse_unk) or are dropped */
    int pending_unk = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = tok->byte_id[w[i]];
        if (id >= 0) {
            if (pending_unk) sym[ns++].id = tok->unk_id, pending_unk = 0;
            sym[ns++].id = id;
        } else if (tok->unk_id >= 0) {
            if (pending_unk && !tok->fuse_unk) sym[ns++].id = tok->unk_id;
            pending_unk = 1;
        }
    }
    if (pending_unk) sym[ns++].id = tok->unk_id;
    for (size_t i = 0; i < ns; i++) {
        sym[i].prev = (int32_t)i - 1;
        sym[i].next = i + 1 < ns ? (int32_t)i + 1 : -1;
    }
    uint32_t rank;
    int32_t nid;
    for (size_t i = 0; i + 1 < ns; i++)
        if (pairmap_get(&tok->merges, sym[i].id, sym[i + 1].id, &rank, &nid))
            heap_push(heap, &nh, (uint64_t)rank << 32 | i);
    while (nh) {
        uint64_t top = heap_pop(heap, &nh);
        uint32_t pos = (uint32_t)top, want = (uint32_t)(top >> 32);
        bpe_sym *s = &sym[pos];
        if (s->id < 0 || s->next < 0) continue;
        bpe_sym *r = &sym[s->next];
        /* stale entry: the pair at pos changed since it was pushed */
        if (!pairmap_get(&tok->merges, s->id, r->id, &rank, &nid) || rank != want) continue;
        s->id = nid;
        r->id = -1;
        s->next = r->next;
        if (r->next >= 0) sym[r->next].prev = (int32_t)pos;
        if (s->prev >= 0 && pairmap_get(&tok->merges, sym[s->prev].id, s->id, &rank, &nid))
            heap_push(heap, &nh, (uint64_t)rank << 32 | (uint32_t)s->prev);
        if (s->next >= 0 && pairmap_get(&tok->merges, s->id, sym[s->next].id, &rank, &nid))
            heap_push(heap, &nh, (uint64_t)rank << 32 | pos);
    }
    for (size_t i = 0; i < ns; i++)
        if (sym[i].id >= 0) idvec_push(out, sym[i].id);
    if (sym != small_sym) free(sym);
    if (heap != small_heap) free(heap);
}

/* ---- per-thread cache: pre-token bytes -> ids ---- */

#define CACHE_MAX_WORD 256          /* longer pre-tokens are rare and not worth keeping (HF: 256 too) */
#define CACHE_MAX_ENTRIES (1u << 20) /* then it is cleared and refilled */
#define CACHE_SLOTS (1u << 21)
#define CACHE_WAYS 4                /* tokenizers one thread can alternate between without thrashing */

typedef struct {
    uint64_t hash;
    uint32_t key_off, ids_off;
    uint16_t key_len, nids;
} cache_entry;

typedef struct {
    uint64_t serial;
    uint32_t *slots; /* entry index + 1 */
    cache_entry *e;
    uint32_t n;
    uint8_t *keys;
    size_t keys_len, keys_cap;
    int32_t *ids;
    size_t ids_len, ids_cap;
} bpe_cache;

typedef struct {
    bpe_cache way[CACHE_WAYS];
    unsigned next_victim;
} thread_caches;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_release(bpe_cache *c) {
    free(c->slots);
    free(c->e);
    free(c->keys);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

static void caches_destroy(void *p) {
    thread_caches *tc = p;
    for (int i = 0; i < CACHE_WAYS; i++) cache_release(&tc->way[i]);
    free(tc);
}

static void cache_key_create(void) { pthread_key_create(&cache_key, caches_destroy); }

static void cache_reset(bpe_cache *c, uint64_t serial) {
    if (!c->slots) {
        c->slots = sc_calloc(CACHE_SLOTS, sizeof *c->slots);
        c->e = sc_malloc(CACHE_MAX_ENTRIES * sizeof *c->e);
    } else {
        memset(c->slots, 0, CACHE_SLOTS * sizeof *c->slots);
    }
    c->serial = serial;
    c->n = 0;
    c->keys_len = c->ids_len = 0;
}

static bpe_cache *cache_for(const sc_tokenizer *tok) {
    pthread_once(&cache_once, cache_key_create);
    thread_caches *tc = pthread_getspecific(cache_key);
    if (!tc) {
        tc = sc_calloc(1, sizeof *tc);
        pthread_setspecific(cache_key, tc);
    }
    for (int i = 0; i < CACHE_WAYS; i++)
        if (tc->way[i].slots && tc->way[i].serial == tok->serial) return &tc->way[i];
    bpe_cache *c = &tc->way[tc->next_victim++ % CACHE_WAYS];
    cache_reset(c, tok->serial);
    return c;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need) nc *= 2;
    p = realloc(p, nc * elem);
    if (!p) sc_malloc((size_t)-1);
    *cap = nc;
    return p;
}

void tokenizer_bpe_word(const sc_tokenizer *tok, const uint8_t *w, size_t n, id_vec *out) {
    if (tok->ignore_merges) { /* HF checks the whole word against the vocabulary before anything else */
        int32_t id = strmap_get(&tok->bytes_to_id, w, n);
        if (id >= 0) {
            idvec_push(out, id);
            return;
        }
    }
    if (n == 1 && tok->byte_id[w[0]] >= 0) {
        idvec_push(out, tok->byte_id[w[0]]);
        return;
    }
    if (n > CACHE_MAX_WORD) {
        tokenizer_bpe_merge(tok, w, n, out);
        return;
    }
    bpe_cache *c = cache_for(tok);
    uint64_t h = tok_hash_bytes(w, n);
    uint32_t j = (uint32_t)h & (CACHE_SLOTS - 1);
    for (; c->slots[j]; j = (j + 1) & (CACHE_SLOTS - 1)) {
        cache_entry *e = &c->e[c->slots[j] - 1];
        if (e->hash == h && e->key_len == n && memcmp(c->keys + e->key_off, w, n) == 0) {
            for (uint32_t k = 0; k < e->nids; k++) idvec_push(out, c->ids[e->ids_off + k]);
            return;
        }
    }
    size_t before = out->n;
    tokenizer_bpe_merge(tok, w, n, out);
    size_t nids = out->n - before;
    if (c->n >= CACHE_MAX_ENTRIES || c->keys_len + n > UINT32_MAX / 2 || c->ids_len + nids > UINT32_MAX / 2) {
        cache_reset(c, tok->serial);
        j = (uint32_t)h & (CACHE_SLOTS - 1);
    }
    c->keys = grow(c->keys, &c->keys_cap, c->keys_len + n, 1);
    c->ids = grow(c->ids, &c->ids_cap, c->ids_len + nids, sizeof *c->ids);
    cache_entry *e = &c->e[c->n];
    e->hash = h;
    e->key_off = (uint32_t)c->keys_len;
    e->key_len = (uint16_t)n;
    e->ids_off = (uint32_t)c->ids_len;
    e->nids = (uint16_t)nids;
    memcpy(c->keys + c->keys_len, w, n);
    memcpy(c->ids + c->ids_len, out->v + before, nids * sizeof *c->ids);
    c->keys_len += n;
    c->ids_len += nids;
    while (c->slots[j]) j = (j + 1) & (CACHE_SLOTS - 1);
    c->slots[j] = ++c->n;
}
