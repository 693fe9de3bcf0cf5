/* tokenizer_bpe.c — BPE of one pre-token, exactly as HF's Word::merge_all (always merge the adjacent pair with
 * the lowest (rank, position)), plus the per-thread word cache that makes encoding fast: code repeats its
 * words, so most pre-tokens are a single hash lookup. Each thread owns its cache; nothing is shared. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "data/tokenizer_internal.h"

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

    /* initial symbols, as HF's merge_word: one per byte (byte-level) or per character (SentencePiece style; a
     * byte that is not UTF-8 counts as a character of its own, which only byte fallback can spell); a symbol
     * not in the vocabulary becomes its <0xNN> byte tokens when byte_fallback has them all (without flushing a
     * pending unk first, as HF), else unk (consecutive ones fused if fuse_unk), or is dropped without unk */
    int pending_unk = 0;
    for (size_t i = 0; i < n;) {
        size_t l = 1;
        int32_t id;
        if (tok->bytelevel) {
            id = tok->byte_id[w[i]];
        } else {
            uint32_t cp;
            int cl = tok_utf8_decode(w + i, n - i, &cp);
            l = cl ? (size_t)cl : 1;
            id = l == 1 ? tok->byte_id[w[i]] : strmap_get(&tok->bytes_to_id, w + i, l);
            if (id < 0 && tok->byte_fallback) {
                size_t k = 0;
                while (k < l && tok->fallback_id[w[i + k]] >= 0) k++;
                if (k == l) {
                    for (k = 0; k < l; k++) sym[ns++].id = tok->fallback_id[w[i + k]];
                    i += l;
                    continue;
                }
            }
        }
        i += l;
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

/* ---- per-thread cache: pre-token bytes -> ids ----
 * Entries live back to back in one arena (header, key bytes, ids), so a hit touches the slot and one entry.
 * A slot holds a 32-bit hash tag and the entry's offset: most misses never leave the slot array, which
 * starts small (fits in L2) and doubles as the cache fills. */

#define CACHE_MAX_WORD 256            /* longer pre-tokens are rare and not worth keeping (HF: 256 too) */
#define CACHE_MAX_ENTRIES (1u << 20)  /* then it is cleared and refilled */
#define CACHE_MAX_ARENA (64u << 20)     /* with the slots, ~100 MB per thread at most */
#define CACHE_WAYS 4                  /* tokenizers one thread can alternate between without thrashing */

typedef struct {
    uint16_t key_len, nids;
    uint32_t pad;
} cache_entry; /* followed by key_len bytes, padding to 4, nids int32 ids */

typedef struct {
    uint64_t serial;
    uint64_t *slots; /* tag << 32 | (arena offset / 8), 0 = empty */
    uint32_t mask, n;
    uint8_t *arena;
    size_t arena_len, arena_cap;
} bpe_cache;

typedef struct {
    bpe_cache way[CACHE_WAYS];
    unsigned next_victim;
} thread_caches;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_release(bpe_cache *c) {
    free(c->slots);
    free(c->arena);
    memset(c, 0, sizeof *c);
}

static void caches_destroy(void *p) {
    thread_caches *tc = p;
    for (int i = 0; i < CACHE_WAYS; i++) cache_release(&tc->way[i]);
    free(tc);
}

static void cache_key_create(void) { pthread_key_create(&cache_key, caches_destroy); }

static void cache_reset(bpe_cache *c, uint64_t serial) {
    free(c->slots);
    c->mask = (1u << 14) - 1;
    c->slots = sc_calloc(c->mask + 1, sizeof *c->slots);
    c->serial = serial;
    c->n = 0;
    c->arena_len = 8; /* offset 0 means empty */
    if (!c->arena) {
        c->arena_cap = 1 << 20;
        c->arena = sc_malloc(c->arena_cap);
    }
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

static inline const cache_entry *entry_at(const bpe_cache *c, uint64_t slot) {
    return (const cache_entry *)(c->arena + (size_t)(uint32_t)slot * 8);
}

static inline const int32_t *entry_ids(const cache_entry *e) {
    return (const int32_t *)((const uint8_t *)(e + 1) + ((e->key_len + 3u) & ~3u));
}

static void cache_grow(bpe_cache *c) {
    uint32_t size = (c->mask + 1) * 2;
    uint64_t *slots = sc_calloc(size, sizeof *slots);
    for (uint32_t i = 0; i <= c->mask; i++) {
        if (!c->slots[i]) continue;
        const cache_entry *e = entry_at(c, c->slots[i]);
        uint64_t h = tok_hash_bytes(e + 1, e->key_len);
        uint32_t j = (uint32_t)h & (size - 1);
        while (slots[j]) j = (j + 1) & (size - 1);
        slots[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = slots;
    c->mask = size - 1;
}

void tokenizer_bpe_word(const sc_tokenizer *tok, const uint8_t *w, size_t n, id_vec *out) {
    if (tok->ignore_merges) { /* HF checks the whole word against the vocabulary before anything else */
        int32_t id = strmap_get(&tok->bytes_to_id, w, n);
        if (id >= 0) {
            idvec_push(out, id);
            return;
        }
    }
    if (n == 1 && tok->byte_id[w[0]] >= 0 && (tok->bytelevel || w[0] < 0x80)) {
        idvec_push(out, tok->byte_id[w[0]]);
        return;
    }
    if (n > CACHE_MAX_WORD) {
        tokenizer_bpe_merge(tok, w, n, out);
        return;
    }
    bpe_cache *c = cache_for(tok);
    uint64_t h = tok_hash_bytes(w, n);
    uint64_t tag = (h >> 32) | 1;
    uint32_t j = (uint32_t)h & c->mask;
    for (uint64_t s; (s = c->slots[j]); j = (j + 1) & c->mask) {
        if (s >> 32 != tag) continue;
        const cache_entry *e = entry_at(c, s);
        if (e->key_len == n && memcmp(e + 1, w, n) == 0) {
            const int32_t *ids = entry_ids(e);
            for (uint32_t k = 0; k < e->nids; k++) idvec_push(out, ids[k]);
            return;
        }
    }
    size_t before = out->n;
    tokenizer_bpe_merge(tok, w, n, out);
    size_t nids = out->n - before;
    size_t need = (sizeof(cache_entry) + ((n + 3) & ~(size_t)3) + nids * 4 + 7) & ~(size_t)7;
    if (c->n >= CACHE_MAX_ENTRIES || c->arena_len + need > CACHE_MAX_ARENA) cache_reset(c, tok->serial);
    if (c->arena_len + need > c->arena_cap) {
        while (c->arena_len + need > c->arena_cap) c->arena_cap *= 2;
        c->arena = realloc(c->arena, c->arena_cap);
        if (!c->arena) sc_malloc((size_t)-1);
    }
    cache_entry *e = (cache_entry *)(c->arena + c->arena_len);
    e->key_len = (uint16_t)n;
    e->nids = (uint16_t)nids;
    memcpy(e + 1, w, n);
    if (nids) memcpy((int32_t *)entry_ids(e), out->v + before, nids * 4); /* all bytes unknown: no ids */
    uint64_t slot = tag << 32 | (c->arena_len / 8);
    c->arena_len += need;
    if (++c->n * 2 > c->mask) cache_grow(c);
    j = (uint32_t)h & c->mask;
    while (c->slots[j]) j = (j + 1) & c->mask;
    c->slots[j] = slot;
}
