/* tokenizer_train.c — byte-level BPE training in the way of HF's BpeTrainer: pre-tokenize the corpus with the
 * very pipeline the result will use (threads over files) into word counts, then repeatedly merge the most
 * frequent adjacent pair. Pair counts are updated incrementally from the words that contain the merged pair
 * and the best pair comes from a max-heap with lazy invalidation (a popped entry whose count is stale is
 * pushed back with the current count), so each merge costs only the words it touches. */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/clock.h"
#include "host/progress.h"
#include "data/corpus.h"
#include "host/error.h"
#include "host/fileio.h"
#include "data/tokenizer_internal.h"
#include "data/tokenizer_train.h"

void tokenizer_train_defaults(tokenizer_train_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->vocab_size = 32768;
    opt->min_frequency = 2;
    opt->max_file_bytes = 8 << 20;
}

/* ---- word counts: pre-token bytes -> count ---- */

typedef struct {
    uint32_t *slots; /* entry + 1 */
    uint32_t mask, n, cap;
    uint64_t *hash, *off, *count;
    uint32_t *len;
    uint8_t *blob;
    size_t blob_len, blob_cap;
} wc_map;

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) sc_malloc((size_t)-1);
    return p;
}

static void wc_init(wc_map *m) {
    memset(m, 0, sizeof *m);
    m->mask = (1u << 16) - 1;
    m->slots = sc_calloc(m->mask + 1, sizeof *m->slots);
}

static void wc_free(wc_map *m) {
    free(m->slots);
    free(m->hash);
    free(m->off);
    free(m->count);
    free(m->len);
    free(m->blob);
}

static void wc_add_hashed(wc_map *m, const uint8_t *w, size_t n, uint64_t h, uint64_t count) {
    uint32_t j = (uint32_t)h & m->mask;
    for (; m->slots[j]; j = (j + 1) & m->mask) {
        uint32_t i = m->slots[j] - 1;
        if (m->hash[i] == h && m->len[i] == n && memcmp(m->blob + m->off[i], w, n) == 0) {
            m->count[i] += count;
            return;
        }
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 4096;
        m->hash = xrealloc(m->hash, m->cap * sizeof *m->hash);
        m->off = xrealloc(m->off, m->cap * sizeof *m->off);
        m->count = xrealloc(m->count, m->cap * sizeof *m->count);
        m->len = xrealloc(m->len, m->cap * sizeof *m->len);
    }
    if (m->blob_len + n > m->blob_cap) {
        while (m->blob_len + n > m->blob_cap) m->blob_cap = m->blob_cap ? m->blob_cap * 2 : 1 << 16;
        m->blob = xrealloc(m->blob, m->blob_cap);
    }
    uint32_t i = m->n++;
    memcpy(m->blob + m->blob_len, w, n);
    m->hash[i] = h, m->off[i] = m->blob_len, m->len[i] = (uint32_t)n, m->count[i] = count;
    m->blob_len += n;
    m->slots[j] = i + 1;
    if (m->n * 2 > m->mask) {
        uint32_t size = (m->mask + 1) * 2;
        free(m->slots);
        m->slots = sc_calloc(size, sizeof *m->slots);
        m->mask = size - 1;
        for (uint32_t k = 0; k < m->n; k++) {
            uint32_t s = (uint32_t)m->hash[k] & m->mask;
            while (m->slots[s]) s = (s + 1) & m->mask;
            m->slots[s] = k + 1;
        }
    }
}

typedef struct {
    wc_map map;
    uint64_t words;
} wc_thread;

static void wc_piece(void *arg, const uint8_t *w, size_t n) {
    wc_thread *t = arg;
    wc_add_hashed(&t->map, w, n, tok_hash_bytes(w, n), 1);
    t->words++;
}

static void wc_added(void *arg, int32_t id) { (void)arg, (void)id; }

/* ---- the corpus: files or in-memory texts ---- */

typedef struct {
    char *const *paths;
    const char *const *texts;
    const size_t *lens;
    size_t n;
} corpus;

static int count_words(const sc_tokenizer *base, const corpus *c, const tokenizer_train_options *opt,
                       wc_map *out, tokenizer_train_stats *st, progress *ps) {
    int nthreads = opt->threads > 0 ? opt->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1) nthreads = 1;
    wc_thread *th = sc_calloc((size_t)nthreads, sizeof *th);
    for (int i = 0; i < nthreads; i++) wc_init(&th[i].map);
    size_t files = 0, binary = 0, not_utf8 = 0, large = 0, unreadable = 0, done = 0;
    uint64_t bytes = 0, seen = 0;
    int failed = 0;
    char err[1024] = "";
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) reduction(+ : files, binary, not_utf8, large, unreadable, bytes)
    for (size_t i = 0; i < c->n; i++) {
        wc_thread *t = &th[omp_get_thread_num()];
        char *data = NULL;
        size_t len = 0;
        if (c->paths) {
            if (file_read_all(c->paths[i], &data, &len)) {
                unreadable++;
                continue;
            }
        } else {
            data = (char *)c->texts[i], len = c->lens[i];
        }
        corpus_kind kind = corpus_classify(data, len);
        if (opt->max_file_bytes > 0 && len > (size_t)opt->max_file_bytes) large++;
        else if (kind == CORPUS_BINARY) binary++;
        else if (kind == CORPUS_NOT_UTF8) not_utf8++;
        else if (kind == CORPUS_EMPTY) (void)0;
        else if (tokenizer_pretokenize(base, data, len, wc_piece, wc_added, t)) {
#pragma omp critical
            {
                failed = 1;
                snprintf(err, sizeof err, "%s: %s", c->paths ? c->paths[i] : "text", sc_error());
            }
        } else {
            files++;
            bytes += len;
        }
        if (c->paths) free(data);
        size_t d = __atomic_add_fetch(&done, 1, __ATOMIC_RELAXED);
        uint64_t b = __atomic_add_fetch(&seen, (uint64_t)len, __ATOMIC_RELAXED);
        if (omp_get_thread_num() == 0 && progress_update(ps, (double)b, 0, 0))
            progress_draw(ps, "counting words: %zu/%zu files, %.1f MB, %.1f MB/s", d, c->n, (double)b / 1e6,
                          ps->rate / 1e6);
    }
    if (failed) {
        for (int i = 0; i < nthreads; i++) wc_free(&th[i].map);
        free(th);
        return sc_fail("%s", err);
    }
    /* fold every thread's counts into the first map */
    *out = th[0].map;
    uint64_t words = th[0].words;
    for (int k = 1; k < nthreads; k++) {
        wc_map *m = &th[k].map;
        for (uint32_t i = 0; i < m->n; i++) wc_add_hashed(out, m->blob + m->off[i], m->len[i], m->hash[i], m->count[i]);
        words += th[k].words;
        wc_free(m);
    }
    free(th);
    st->files = files, st->skipped_binary = binary, st->skipped_not_utf8 = not_utf8, st->skipped_large = large;
    st->unreadable = unreadable;
    st->bytes = bytes, st->words = words, st->unique_words = out->n;
    return 0;
}

/* ---- the merge loop ---- */

typedef struct {
    uint32_t *v;
    uint32_t n, cap;
} u32vec;

static void u32_push(u32vec *v, uint32_t x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 4;
        v->v = xrealloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = x;
}

/* adjacent pairs: (a, b) -> index, with each pair's count and the words that may contain it */
typedef struct {
    uint64_t *keys; /* (a << 32 | b) + 1, 0 = empty */
    uint32_t *slot_val;
    uint64_t mask;
    uint32_t n, cap;
    int32_t *a, *b;
    int64_t *count;
    u32vec *where;
    uint8_t *merged;
    uint32_t *stamp;
} pair_table;

static uint32_t pair_index(pair_table *t, int32_t a, int32_t b) {
    uint64_t k = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint64_t i = ((k * 0x9E3779B97F4A7C15ull) >> 20) & t->mask;
    for (; t->keys[i]; i = (i + 1) & t->mask)
        if (t->keys[i] == k) return t->slot_val[i];
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1 << 16;
        t->a = xrealloc(t->a, t->cap * sizeof *t->a);
        t->b = xrealloc(t->b, t->cap * sizeof *t->b);
        t->count = xrealloc(t->count, t->cap * sizeof *t->count);
        t->where = xrealloc(t->where, t->cap * sizeof *t->where);
        t->merged = xrealloc(t->merged, t->cap * sizeof *t->merged);
        t->stamp = xrealloc(t->stamp, t->cap * sizeof *t->stamp);
    }
    uint32_t p = t->n++;
    t->a[p] = a, t->b[p] = b, t->count[p] = 0, t->merged[p] = 0, t->stamp[p] = 0;
    memset(&t->where[p], 0, sizeof t->where[p]);
    t->keys[i] = k;
    t->slot_val[i] = p;
    if ((uint64_t)t->n * 2 > t->mask) {
        uint64_t size = (t->mask + 1) * 2;
        uint64_t *keys = sc_calloc(size, sizeof *keys);
        uint32_t *vals = sc_malloc(size * sizeof *vals);
        for (uint64_t j = 0; j <= t->mask; j++) {
            if (!t->keys[j]) continue;
            uint64_t s = ((t->keys[j] * 0x9E3779B97F4A7C15ull) >> 20) & (size - 1);
            while (keys[s]) s = (s + 1) & (size - 1);
            keys[s] = t->keys[j];
            vals[s] = t->slot_val[j];
        }
        free(t->keys);
        free(t->slot_val);
        t->keys = keys, t->slot_val = vals, t->mask = size - 1;
    }
    return p;
}

/* max-heap on count; equal counts: the smaller (a, b) first, so training is deterministic */
typedef struct {
    int64_t count;
    uint32_t p;
} heap_entry;

typedef struct {
    heap_entry *v;
    size_t n, cap;
    const pair_table *pt;
} pair_heap;

static int heap_before(const pair_heap *h, heap_entry x, heap_entry y) {
    if (x.count != y.count) return x.count > y.count;
    const pair_table *t = h->pt;
    if (t->a[x.p] != t->a[y.p]) return t->a[x.p] < t->a[y.p];
    return t->b[x.p] < t->b[y.p];
}

static void heap_push(pair_heap *h, int64_t count, uint32_t p) {
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1 << 16;
        h->v = xrealloc(h->v, h->cap * sizeof *h->v);
    }
    heap_entry e = {count, p};
    size_t i = h->n++;
    while (i) {
        size_t up = (i - 1) / 2;
        if (!heap_before(h, e, h->v[up])) break;
        h->v[i] = h->v[up];
        i = up;
    }
    h->v[i] = e;
}

static heap_entry heap_pop(pair_heap *h) {
    heap_entry top = h->v[0], e = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && heap_before(h, h->v[c + 1], h->v[c])) c++;
        if (!heap_before(h, h->v[c], e)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = e;
    return top;
}

typedef struct {
    int32_t *sym;      /* all words' symbols */
    uint64_t *off;
    uint32_t *len;
    uint64_t *count;
    uint32_t *stamp;
    uint32_t n;
    pair_table pairs;
    u32vec touched;
    uint32_t iter;
} train_state;

static void pair_inc(train_state *s, int32_t a, int32_t b, uint32_t w) {
    uint32_t q = pair_index(&s->pairs, a, b);
    pair_table *t = &s->pairs;
    t->count[q] += (int64_t)s->count[w];
    if (!t->where[q].n || t->where[q].v[t->where[q].n - 1] != w) u32_push(&t->where[q], w);
    if (t->stamp[q] != s->iter) {
        t->stamp[q] = s->iter;
        u32_push(&s->touched, q);
    }
}

static void pair_dec(train_state *s, int32_t a, int32_t b, uint32_t w) {
    uint32_t q = pair_index(&s->pairs, a, b);
    s->pairs.count[q] -= (int64_t)s->count[w];
}

/* Replaces every (a, b) in word w by id, left to right, and updates the neighbours' pair counts. */
static void merge_word(train_state *s, uint32_t w, int32_t a, int32_t b, int32_t id) {
    int32_t *x = s->sym + s->off[w];
    uint32_t len = s->len[w], i = 0, j = 0;
    while (i < len) {
        if (i + 1 < len && x[i] == a && x[i + 1] == b) {
            if (j > 0) {
                pair_dec(s, x[j - 1], a, w);
                pair_inc(s, x[j - 1], id, w);
            }
            if (i + 2 < len) {
                pair_dec(s, b, x[i + 2], w);
                pair_inc(s, id, x[i + 2], w);
            }
            x[j++] = id;
            i += 2;
        } else {
            x[j++] = x[i++];
        }
    }
    s->len[w] = j;
}

static int train_corpus(const corpus *c, const tokenizer_train_options *opt_in, const char *out_path,
                        tokenizer_train_stats *stats) {
    tokenizer_train_options opt;
    tokenizer_train_defaults(&opt);
    if (opt_in) opt = *opt_in;
    tokenizer_train_stats st_local, *st = stats ? stats : &st_local;
    memset(st, 0, sizeof *st);
    const int first_byte = TOKENIZER_NSPECIAL, nbase = TOKENIZER_NSPECIAL + 256;
    if (opt.vocab_size < nbase || opt.vocab_size > (1 << 24))
        return sc_fail("vocab size %d: must be between %d (specials + 256 bytes) and %d", opt.vocab_size, nbase,
                       1 << 24);
    progress ps;
    progress_start(&ps, opt.progress, PROGRESS_EVERY_TTY, PROGRESS_EVERY_LOG);

    /* tokens: specials, then the bytes; merged tokens are appended */
    size_t tcap = (size_t)opt.vocab_size;
    uint64_t *toff = sc_calloc(tcap, sizeof *toff);
    uint32_t *tlen = sc_calloc(tcap, sizeof *tlen);
    size_t blob_len = 256, blob_cap = 1 << 20;
    uint8_t *tblob = sc_malloc(blob_cap);
    for (int i = 0; i < 256; i++) tblob[i] = (uint8_t)i, toff[first_byte + i] = (uint64_t)i, tlen[first_byte + i] = 1;
    int32_t (*merges)[2] = NULL;
    size_t nmerges = 0, mcap = 0;
    tokenizer_model_desc desc = {tokenizer_specials, TOKENIZER_NSPECIAL, nbase, tblob, toff, tlen, NULL, 0};

    /* the pipeline the result will have: pre-tokenize with it */
    char *json = tokenizer_json_render(&desc);
    sc_tokenizer *base;
    int rc = tokenizer_load_json(&base, json, strlen(json), "(base tokenizer)");
    free(json);
    if (rc) goto out_tokens;
    wc_map wc;
    double t0 = clock_now();
    rc = count_words(base, c, &opt, &wc, st, &ps);
    tokenizer_free(base);
    if (rc) goto out_tokens;
    st->count_seconds = clock_now() - t0;
    if (opt.progress)
        progress_note(&ps, "counted %llu words (%llu distinct) in %zu files, %.1f MB, %.1f s",
                  (unsigned long long)st->words, (unsigned long long)st->unique_words, st->files,
                  (double)st->bytes / 1e6, st->count_seconds);
    if (!st->files || !st->words) {
        rc = sc_fail("no usable text: %zu text files, %zu binary, %zu not UTF-8, %zu too large, %zu unreadable",
                     st->files, st->skipped_binary, st->skipped_not_utf8, st->skipped_large, st->unreadable);
        wc_free(&wc);
        goto out_tokens;
    }

    /* words as symbol sequences */
    train_state s = {0};
    s.n = wc.n;
    s.sym = sc_malloc(wc.blob_len * sizeof *s.sym + 4);
    s.off = sc_malloc(wc.n * sizeof *s.off + 8);
    s.len = sc_malloc(wc.n * sizeof *s.len + 4);
    s.count = wc.count, wc.count = NULL;
    s.stamp = sc_calloc(wc.n + 1, sizeof *s.stamp);
    s.pairs.mask = (1u << 17) - 1;
    s.pairs.keys = sc_calloc(s.pairs.mask + 1, sizeof *s.pairs.keys);
    s.pairs.slot_val = sc_malloc((s.pairs.mask + 1) * sizeof *s.pairs.slot_val);
    uint64_t k = 0;
    for (uint32_t w = 0; w < wc.n; w++) {
        s.off[w] = k, s.len[w] = wc.len[w];
        for (uint32_t i = 0; i < wc.len[w]; i++) s.sym[k++] = first_byte + wc.blob[wc.off[w] + i];
        for (uint32_t i = 0; i + 1 < wc.len[w]; i++) pair_inc(&s, s.sym[s.off[w] + i], s.sym[s.off[w] + i + 1], w);
    }
    wc_free(&wc);
    pair_heap heap = {NULL, 0, 0, &s.pairs};
    for (uint32_t p = 0; p < s.pairs.n; p++)
        if (s.pairs.count[p] > 0) heap_push(&heap, s.pairs.count[p], p);
    s.touched.n = 0;

    tok_strmap seen;
    strmap_init(&seen, (uint32_t)opt.vocab_size);
    for (int i = 0; i < 256; i++) strmap_put(&seen, tblob + i, 1, first_byte + i);
    int ntok = nbase;
    int64_t min_count = opt.min_frequency > 1 ? opt.min_frequency : 1;
    t0 = clock_now();
    while (ntok < opt.vocab_size && heap.n) {
        heap_entry top = heap_pop(&heap);
        uint32_t p = top.p;
        pair_table *pt = &s.pairs;
        if (pt->merged[p]) continue;
        if (top.count != pt->count[p]) {
            if (pt->count[p] > 0) heap_push(&heap, pt->count[p], p);
            continue;
        }
        if (top.count < min_count) break;
        int32_t a = pt->a[p], b = pt->b[p];
        /* the new token's bytes; an existing token with the same bytes keeps its id (HF does the same) */
        size_t nl = (size_t)tlen[a] + tlen[b];
        if (blob_len + nl > blob_cap) {
            while (blob_len + nl > blob_cap) blob_cap *= 2;
            tblob = xrealloc(tblob, blob_cap);
        }
        memcpy(tblob + blob_len, tblob + toff[a], tlen[a]);
        memcpy(tblob + blob_len + tlen[a], tblob + toff[b], tlen[b]);
        int32_t id = strmap_get(&seen, tblob + blob_len, nl);
        if (id < 0) {
            id = ntok++;
            toff[id] = blob_len, tlen[id] = (uint32_t)nl;
            strmap_put(&seen, tblob + blob_len, nl, id);
            blob_len += nl;
        }
        if (nmerges == mcap) {
            mcap = mcap ? mcap * 2 : 4096;
            merges = xrealloc(merges, mcap * sizeof *merges);
        }
        merges[nmerges][0] = a, merges[nmerges][1] = b;
        nmerges++;
        s.iter++;
        s.touched.n = 0;
        u32vec where = pt->where[p];
        memset(&pt->where[p], 0, sizeof pt->where[p]);
        for (uint32_t i = 0; i < where.n; i++) {
            uint32_t w = where.v[i];
            if (s.stamp[w] == s.iter) continue;
            s.stamp[w] = s.iter;
            merge_word(&s, w, a, b, id);
        }
        free(where.v);
        pt = &s.pairs; /* merge_word may have grown the table */
        pt->count[p] = 0;
        pt->merged[p] = 1;
        for (uint32_t i = 0; i < s.touched.n; i++) {
            uint32_t q = s.touched.v[i];
            if (!pt->merged[q] && pt->count[q] > 0) heap_push(&heap, pt->count[q], q);
        }
        int total = opt.vocab_size - nbase, got = ntok - nbase;
        if (progress_update(&ps, got, total, 0)) {
            char eta[32];
            progress_draw(&ps, "merges: %d/%d, %.0f/s, ETA %s", got, total, ps.rate,
                          progress_duration(eta, sizeof eta, ps.eta));
        }
    }
    st->merge_seconds = clock_now() - t0;
    st->vocab_size = ntok;
    st->merges = (int)nmerges;
    if (opt.progress) progress_note(&ps, "%zu merges, vocabulary %d, in %.1f s", nmerges, ntok, st->merge_seconds);

    strmap_free(&seen);
    free(heap.v);
    free(s.touched.v);
    for (uint32_t p = 0; p < s.pairs.n; p++) free(s.pairs.where[p].v);
    free(s.pairs.keys), free(s.pairs.slot_val), free(s.pairs.a), free(s.pairs.b), free(s.pairs.count);
    free(s.pairs.where), free(s.pairs.merged), free(s.pairs.stamp);
    free(s.sym), free(s.off), free(s.len), free(s.count), free(s.stamp);

    /* render, check that it loads, write atomically */
    desc.ntokens = ntok;
    desc.blob = tblob;
    desc.merges = (const int32_t(*)[2])merges;
    desc.nmerges = (int)nmerges;
    json = tokenizer_json_render(&desc);
    sc_tokenizer *check;
    rc = tokenizer_load_json(&check, json, strlen(json), out_path);
    if (!rc) {
        tokenizer_free(check);
        rc = atomic_write_file(out_path, json, strlen(json));
    }
    free(json);
out_tokens:
    free(merges);
    free(tblob);
    free(toff);
    free(tlen);
    return rc;
}

int tokenizer_train_files(char *const *paths, size_t n, const tokenizer_train_options *opt, const char *out_path,
                          tokenizer_train_stats *stats) {
    corpus c = {paths, NULL, NULL, n};
    return train_corpus(&c, opt, out_path, stats);
}

int tokenizer_train_texts(const char *const *texts, const size_t *lens, size_t n,
                          const tokenizer_train_options *opt, const char *out_path, tokenizer_train_stats *stats) {
    corpus c = {NULL, texts, lens, n};
    return train_corpus(&c, opt, out_path, stats);
}
