/* cmd_tokenize.c — `smallcoder tokenize`: source files → train/val token shards (*.tok, see shard.h).
 * Worker threads read, classify, hash and encode files in parallel; the main thread consumes the results in
 * file order (dedup, train/val split, shard writing), so the output bytes do not depend on the thread count. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/clock.h"
#include "host/progress.h"
#include "host/args.h"
#include "host/command.h"
#include "host/checksum.h"
#include "data/corpus.h"
#include "host/error.h"
#include "host/fileio.h"
#include "data/shard_set.h"
#include "data/fim_family.h"
#include "data/tokenizer.h"
#include "data/tokenizer_train.h"

/* ---- one file's result, produced by a worker ---- */
typedef enum { FILE_OK, FILE_EMPTY, FILE_BINARY, FILE_NOT_UTF8, FILE_LARGE, FILE_UNREADABLE, FILE_SPECIAL, FILE_FAILED } file_status;

typedef struct {
    int ready;
    file_status status;
    uint64_t bytes, h1, h2;   /* size read, two independent content hashes (dedup key; h2 also picks the split) */
    int32_t *ids;
    size_t n;
    char *error;              /* FILE_FAILED: the message (sc_error is per thread) */
} file_result;

typedef struct {
    const sc_tokenizer *tok;
    const char *forged[8];    /* the separator's, the BOS's and the family's FIM sentinels' text: files holding one
                                 are skipped like our specials */
    int nforged;
    const corpus_list *files;
    uint64_t max_size;
    file_result *ring;
    size_t ring_n, next_claim, consumed;
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
} pipeline;

/* Text that would encode to a special token (a literal "<|endoftext|>" in a source file) would forge document
 * boundaries or FIM sentinels, and tokenizer_encode matches such text as the special token: skip those files. */
static const char *const SPECIALS[] = {SC_TOK_ENDOFTEXT, SC_TOK_FIM_PREFIX, SC_TOK_FIM_MIDDLE,
                                       SC_TOK_FIM_SUFFIX, SC_TOK_FIM_PAD, SC_TOK_FILE_SEP};

static int has_special_text(const char *data, size_t n, const pipeline *p) {
    for (size_t i = 0; i < sizeof SPECIALS / sizeof SPECIALS[0]; i++)
        if (memchr(data, '<', n) && memmem(data, n, SPECIALS[i], strlen(SPECIALS[i]))) return 1;
    for (int i = 0; i < p->nforged; i++)
        if (memmem(data, n, p->forged[i], strlen(p->forged[i]))) return 1;
    return 0;
}

/* The texts that would forge a document boundary or a FIM sentinel in the family's layout. */
static void forged_texts(pipeline *p, const sc_tokenizer *tok, const char *eot_text) {
    p->forged[p->nforged++] = eot_text;
    const fim_family *f = fim_family_of(tok);
    if (f) {
        p->forged[p->nforged++] = f->pre, p->forged[p->nforged++] = f->suf, p->forged[p->nforged++] = f->mid;
        if (f->pad) p->forged[p->nforged++] = f->pad;
    }
    const int32_t *pre;
    for (int i = 0, n = tokenizer_special_prefix(tok, &pre); i < n && p->nforged < 8; i++)
        p->forged[p->nforged++] = tokenizer_token_text(tok, pre[i]);
}

/* Reads at most max+1 bytes so a file that grew past the limit since the walk is still caught. */
static int read_file(const char *path, uint64_t max, char **data, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 16, len = 0;
    char *buf = sc_malloc(cap);
    for (;;) {
        if (len == cap) {
            char *nb = sc_malloc(2 * cap);
            memcpy(nb, buf, len);
            free(buf);
            buf = nb, cap *= 2;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0 || (max && len > max)) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return -1;
    }
    *data = buf, *n = len;
    return 0;
}

static void process_file(pipeline *p, size_t i, file_result *r) {
    char *data = NULL;
    size_t n = 0;
    memset(r, 0, sizeof *r);
    if (read_file(p->files->files[i].path, p->max_size, &data, &n)) {
        r->status = FILE_UNREADABLE;
        return;
    }
    r->bytes = n;
    corpus_kind kind = corpus_classify(data, n);
    if (p->max_size && n > p->max_size) r->status = FILE_LARGE;
    else if (kind == CORPUS_EMPTY) r->status = FILE_EMPTY;
    else if (kind == CORPUS_BINARY) r->status = FILE_BINARY;
    else if (kind == CORPUS_NOT_UTF8) r->status = FILE_NOT_UTF8;
    else if (has_special_text(data, n, p)) r->status = FILE_SPECIAL;
    else {
        r->h1 = hash64(data, n, 0x5c0de5c0de5c0de5ull);
        r->h2 = hash64(data, n, 0x7a11da7a5eed0001ull);
        /* with the post-processor's tokens: a Llama or DeepSeek document starts with BOS, as HF's tokenizer(text)
         * gives it and as prompts are encoded (complete, serve), so eval and training see what inference sees */
        if (tokenizer_encode_special(p->tok, data, n, &r->ids, &r->n)) {
            r->status = FILE_FAILED;
            size_t len = strlen(p->files->files[i].path) + strlen(sc_error()) + 16;
            r->error = sc_malloc(len);
            snprintf(r->error, len, "%s: %s", p->files->files[i].path, sc_error());
        }
    }
    free(data);
}

static void *worker(void *arg) {
    pipeline *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->next_claim < p->files->n && p->next_claim >= p->consumed + p->ring_n)
            pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->stop || p->next_claim >= p->files->n) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        size_t i = p->next_claim++;
        pthread_mutex_unlock(&p->mu);
        file_result r;
        process_file(p, i, &r);
        r.ready = 1;
        pthread_mutex_lock(&p->mu);
        p->ring[i % p->ring_n] = r;
        pthread_cond_broadcast(&p->cv_done);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Ctrl-C / SIGTERM: stop at the next file and take the normal failure path, which removes every shard and
 * temporary file of this run (and the output directory if this run created it). */
static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { interrupted = sig; }

/* Catches SIGINT and SIGTERM unless they were ignored on entry (nohup, background jobs keep that). */
static void signals_catch(struct sigaction old[2]) {
    static const int sigs[2] = {SIGINT, SIGTERM};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    interrupted = 0;
    for (int i = 0; i < 2; i++) {
        sigaction(sigs[i], NULL, &old[i]);
        if (old[i].sa_handler != SIG_IGN) sigaction(sigs[i], &sa, NULL);
    }
}

static void signals_restore(const struct sigaction old[2]) {
    sigaction(SIGINT, &old[0], NULL);
    sigaction(SIGTERM, &old[1], NULL);
}

/* ---- exact-duplicate set: open addressing on the 128-bit content hash ---- */
typedef struct {
    uint64_t *keys;  /* pairs (h1, h2); h1 == 0 && h2 == 0 marks an empty slot */
    size_t cap, n;
} dedup_set;

static int dedup_insert(dedup_set *d, uint64_t h1, uint64_t h2) {
    if (h1 == 0 && h2 == 0) h2 = 1;
    if (2 * (d->n + 1) > d->cap) {
        dedup_set bigger = {sc_calloc(2 * (d->cap ? d->cap * 2 : 1024), sizeof(uint64_t)), d->cap ? d->cap * 2 : 1024, 0};
        for (size_t i = 0; i < d->cap; i++)
            if (d->keys[2 * i] || d->keys[2 * i + 1]) dedup_insert(&bigger, d->keys[2 * i], d->keys[2 * i + 1]);
        free(d->keys);
        *d = bigger;
    }
    for (size_t i = h1 & (d->cap - 1);; i = (i + 1) & (d->cap - 1)) {
        uint64_t *k = &d->keys[2 * i];
        if (k[0] == h1 && k[1] == h2) return 0;  /* already there */
        if (k[0] == 0 && k[1] == 0) {
            k[0] = h1, k[1] = h2;
            d->n++;
            return 1;
        }
    }
}

/* Copies tokenizer.json next to the shards (atomically; a copy onto itself rewrites the same bytes). */
static int copy_tokenizer(const char *from, const char *to) {
    char *text;
    size_t len;
    if (file_read_all(from, &text, &len)) return -1;
    int rc = atomic_write_file(to, text, len);
    free(text);
    return rc;
}

/* ---- output directory: refuse to mix with old shards; remove what we created on failure ---- */
static int prepare_out_dir(const char *dir, int *created) {
    *created = 0;
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return sc_fail("%s: exists and is not a directory", dir);
        corpus_list old = {0};
        corpus_filter f = {0};
        char *paths[1] = {(char *)dir};
        int rc = 0;
        if (corpus_filter_parse_exts(&f, ".tok") == 0 && corpus_walk(&old, paths, 1, &f) == 0) {
            for (size_t i = 0; i < old.n && rc == 0; i++) {
                const char *base = strrchr(old.files[i].path, '/') + 1;
                if (strncmp(base, "train-", 6) == 0 || strncmp(base, "val-", 4) == 0)
                    rc = sc_fail("%s: already holds shards (%s); choose a new --out or remove them", dir, base);
            }
        }
        corpus_list_free(&old);
        corpus_filter_free(&f);
        return rc;
    }
    if (mkdir(dir, 0777) != 0) return sc_fail("%s: cannot create directory: %s", dir, strerror(errno));
    *created = 1;
    return 0;
}

typedef struct {
    uint64_t per_doc;  /* tokens added to each document: the separator and the post-processor's */
    const char *eot_text, *bos_text;
    int32_t eot;
    uint64_t files, docs, bytes_in, bytes_docs;
    uint64_t n_empty, n_binary, n_not_utf8, n_large, n_unreadable, n_special, n_dup;
} tokenize_stats;

static void human(char *buf, size_t n, double v) {
    if (v >= 1e9) snprintf(buf, n, "%.2fG", v / 1e9);
    else if (v >= 1e6) snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, n, "%.1fk", v / 1e3);
    else snprintf(buf, n, "%.0f", v);
}

/* "tokenize:  42.0%  files 12/30  3.1 MB/s  1.20M tokens  ETA 1m05s", the pace by bytes read; the final state
 * only on a terminal (in a log the summary that follows says it all) */
static void show_progress(progress *p, const tokenize_stats *st, const corpus_list *l, uint64_t tokens, int final) {
    if (final && !p->tty) return;
    if (!progress_update(p, (double)st->bytes_in, (double)l->total_bytes, final)) return;
    char tok[16], eta[32];
    human(tok, sizeof tok, (double)tokens);
    progress_draw(p, "tokenize: %5.1f%%  files %llu/%llu  %.1f MB/s  %s tokens  ETA %s",
                  l->total_bytes ? 100.0 * (double)st->bytes_in / (double)l->total_bytes : 100.0,
                  (unsigned long long)st->files, (unsigned long long)l->n, p->rate / 1e6, tok,
                  progress_duration(eta, sizeof eta, p->eta));
}

static void print_summary(const tokenize_stats *s, const corpus_list *l, shard_set *const sets[2], uint32_t dtype,
                          double secs, int threads, uint64_t max_size) {
    uint64_t tokens = shard_set_tokens(sets[0]) + shard_set_tokens(sets[1]);
    uint64_t shard_bytes = shard_set_bytes(sets[0]) + shard_set_bytes(sets[1]);
    uint64_t text_tokens = tokens - s->docs * s->per_doc;  /* minus the separator (and BOS) of each document */
    printf("tokenize: %llu documents (train %llu, val %llu), %llu tokens (train %llu, val %llu) in %d + %d shards\n",
           (unsigned long long)s->docs, (unsigned long long)shard_set_documents(sets[0]),
           (unsigned long long)shard_set_documents(sets[1]), (unsigned long long)tokens,
           (unsigned long long)shard_set_tokens(sets[0]), (unsigned long long)shard_set_tokens(sets[1]),
           shard_set_files(sets[0]), shard_set_files(sets[1]));
    printf("  text %.2f MB, %.3f bytes per token; shards %.2f MB: zstd ratio %.2fx over %u-byte ids, %.2f text bytes per shard byte\n",
           (double)s->bytes_docs / 1e6, text_tokens ? (double)s->bytes_docs / (double)text_tokens : 0.0,
           (double)shard_bytes / 1e6, shard_bytes ? (double)(tokens * dtype) / (double)shard_bytes : 0.0, dtype,
           shard_bytes ? (double)s->bytes_docs / (double)shard_bytes : 0.0);
    printf("  each document ends with %s (id %d)%s%s\n", s->eot_text, s->eot, s->bos_text ? " and starts with " : "",
           s->bos_text ? s->bos_text : "");
    printf("  skipped: %llu duplicate, %llu binary, %llu not UTF-8, %llu over %.0f KiB, %llu empty, %llu unreadable, "
           "%llu with special-token text; %llu not matching --ext, %llu other (hidden, symlinked dirs, devices)\n",
           (unsigned long long)s->n_dup, (unsigned long long)s->n_binary, (unsigned long long)s->n_not_utf8,
           (unsigned long long)(s->n_large + l->skipped_large), (double)max_size / 1024.0,
           (unsigned long long)s->n_empty, (unsigned long long)(s->n_unreadable + l->skipped_unreadable),
           (unsigned long long)s->n_special, (unsigned long long)l->skipped_ext, (unsigned long long)l->skipped_other);
    printf("  %.2f s, %.2f MB/s of input, %d threads\n", secs, secs > 0 ? (double)s->bytes_in / 1e6 / secs : 0.0, threads);
}

int cmd_tokenize(int argc, char **argv) {
    const char *tok_path = NULL, *out = NULL, *ext = TOKENIZER_DEFAULT_EXTS;
    float val_fraction = 0.01f;
    int64_t max_size = 1 << 20, shard_tokens = 100000000;
    int threads = 0, frame_tokens = SHARD_FRAME_TOKENS_DEFAULT, level = 3;
    const sc_arg args[] = {
        {"tokenizer", 't', SC_ARG_STR, &tok_path, "tokenizer.json (HF format)", 1},
        {"out", 'o', SC_ARG_STR, &out, "output directory for train-NNNNN.tok / val-NNNNN.tok", 1},
        {"val-fraction", 0, SC_ARG_FLOAT, &val_fraction, "fraction of documents for val (by content hash)", 0},
        {"ext", 0, SC_ARG_STR, &ext, "only files with these extensions (case-insensitive; \"*\" = every file); default: as tokenizer train", 0},
        {"max-file-size", 0, SC_ARG_BYTES, &max_size, "skip files larger than this", 0},
        {"shard-tokens", 0, SC_ARG_I64, &shard_tokens, "start a new shard after this many tokens", 0},
        {"frame-tokens", 0, SC_ARG_INT, &frame_tokens, "tokens per zstd frame (the unit of random access)", 0},
        {"zstd-level", 0, SC_ARG_INT, &level, "zstd compression level", 0},
        {"threads", 'j', SC_ARG_INT, &threads, "encoding threads (0 = all cores)", 0},
    };
    const sc_cli cli = {"smallcoder tokenize", "-t tokenizer.json --out DIR [options] PATH...",
                        "Tokenizes source files (directories are walked recursively in sorted order) into zstd token "
                        "shards, the tokenizer's end-of-text token after each document (<|endoftext|>, "
                        "<｜end▁of▁sentence｜>, <|end_of_text|> or </s>) and the BOS its post_processor adds before "
                        "it (Llama, DeepSeek-Coder). Binary, non-UTF-8, oversized, empty, "
                        "unreadable and exactly duplicated files are skipped and counted. The same input gives the "
                        "same bytes whatever the thread count.",
                        args, (int)(sizeof args / sizeof args[0]), 1, -1};
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS, {"zstd-level", 1, 22}, {"val-fraction", 0, 1}};
    sc_command cmd = {.cli = &cli, SC_COMMAND_RANGES(ranges)};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    if (!(val_fraction >= 0 && val_fraction <= 1)) {
        fprintf(stderr, "smallcoder tokenize: --val-fraction %g is not in [0, 1]\n", val_fraction);
        return 2;
    }
    if (shard_tokens < 1 || frame_tokens < 1 || (uint32_t)frame_tokens > SHARD_FRAME_TOKENS_MAX || max_size < 0) {
        fprintf(stderr, "smallcoder tokenize: --shard-tokens, --frame-tokens (<= %u) and --max-file-size must be positive\n",
                SHARD_FRAME_TOKENS_MAX);
        return 2;
    }
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;

    sc_tokenizer *tok = NULL;
    corpus_list list = {0};
    corpus_filter filter = {.max_file_size = (uint64_t)max_size};
    shard_set *sets[2] = {NULL, NULL};
    pipeline p = {0};
    dedup_set dedup = {0};
    int created = 0, rc = -1, started = 0, wrote_tok = 0;
    char tok_copy[4200];
    pthread_t *tids = NULL;
    struct sigaction old_signals[2];
    signals_catch(old_signals);  /* from here on an interrupt takes the cleanup path below */
    if (tokenizer_load(&tok, tok_path)) goto done;
    const char *eot_text;
    int32_t eot = fim_family_eot(tok, &eot_text);
    if (eot < 0) {
        sc_fail("%s: the tokenizer has no end-of-text token (%s, </s>, ...) to separate documents", tok_path,
                SC_TOK_ENDOFTEXT);
        goto done;
    }
    const int32_t *tail;
    if (tokenizer_special_suffix(tok, &tail) > 0) { /* cls $A sep processors: not a causal LM's tokenizer */
        sc_fail("%s: the post_processor appends tokens after the text (a BERT/RoBERTa template); documents end with %s "
                "here", tok_path, eot_text);
        goto done;
    }
    forged_texts(&p, tok, eot_text);
    if (corpus_filter_parse_exts(&filter, ext)) goto done;
    if (corpus_walk(&list, argv, cmd.npos, &filter)) goto done;
    if (interrupted || prepare_out_dir(out, &created)) {
        if (interrupted) sc_fail("interrupted (signal %d)", (int)interrupted);
        goto done;
    }

    shard_writer_options wo = {.vocab_size = (uint32_t)tokenizer_vocab_size(tok), .tokenizer_hash = tokenizer_hash(tok),
                               .frame_tokens = (uint32_t)frame_tokens, .zstd_level = level};
    sets[0] = shard_set_create(out, "train", &wo, (uint64_t)shard_tokens);
    sets[1] = shard_set_create(out, "val", &wo, (uint64_t)shard_tokens);

    p.tok = tok, p.files = &list, p.max_size = (uint64_t)max_size;
    p.ring_n = 8 * (size_t)threads + 8;
    p.ring = sc_calloc(p.ring_n, sizeof *p.ring);
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv_work, NULL);
    pthread_cond_init(&p.cv_done, NULL);
    tids = sc_calloc((size_t)threads, sizeof *tids);
    for (; started < threads; started++)
        if (pthread_create(&tids[started], NULL, worker, &p) != 0) break;
    if (started == 0) {
        sc_fail("cannot start worker threads");
        goto done;
    }

    tokenize_stats st = {.eot_text = eot_text, .eot = eot};
    {
        const int32_t *pre;
        int npre = tokenizer_special_prefix(tok, &pre);
        st.per_doc = 1 + (uint64_t)npre;
        st.bos_text = npre ? tokenizer_token_text(tok, pre[0]) : NULL;
    }
    progress bar;
    progress_start(&bar, 1, PROGRESS_EVERY_TTY, PROGRESS_EVERY_LOG);
    double t0 = clock_now();
    int failed = 0;
    for (size_t i = 0; i < list.n && !failed; i++) {
        if (interrupted) {
            sc_fail("interrupted (signal %d): removed the partial output", (int)interrupted);
            failed = 1;
            break;
        }
        file_result *slot = &p.ring[i % p.ring_n];
        pthread_mutex_lock(&p.mu);
        while (!slot->ready) pthread_cond_wait(&p.cv_done, &p.mu);
        file_result r = *slot;
        memset(slot, 0, sizeof *slot);
        p.consumed = i + 1;
        pthread_cond_broadcast(&p.cv_work);
        pthread_mutex_unlock(&p.mu);

        st.files++;
        st.bytes_in += r.bytes;
        switch (r.status) {
        case FILE_OK:
            if (!dedup_insert(&dedup, r.h1, r.h2)) {
                st.n_dup++;
            } else {
                /* top 53 bits of an independent content hash: the same file lands in the same split anywhere */
                int val = (double)(r.h2 >> 11) * (1.0 / 9007199254740992.0) < (double)val_fraction;
                if (shard_set_add_document(sets[val], r.ids, r.n, eot)) failed = 1;
                st.docs++;
                st.bytes_docs += r.bytes;
            }
            break;
        case FILE_EMPTY: st.n_empty++; break;
        case FILE_BINARY: st.n_binary++; break;
        case FILE_NOT_UTF8: st.n_not_utf8++; break;
        case FILE_LARGE: st.n_large++; break;
        case FILE_UNREADABLE: st.n_unreadable++; break;
        case FILE_SPECIAL: st.n_special++; break;
        case FILE_FAILED:
            sc_fail("%s", r.error);
            failed = 1;
            break;
        }
        free(r.ids);
        free(r.error);
        show_progress(&bar, &st, &list, shard_set_tokens(sets[0]) + shard_set_tokens(sets[1]), 0);
    }
    show_progress(&bar, &st, &list, shard_set_tokens(sets[0]) + shard_set_tokens(sets[1]), 1);
    progress_finish(&bar);
    if (!failed && interrupted) failed = sc_fail("interrupted (signal %d): removed the partial output", (int)interrupted) != 0;
    if (failed) goto done;
    if (st.docs == 0) {
        sc_fail("no documents to write: %zu files considered (%llu binary, %llu not UTF-8, %llu empty, %llu oversized, "
                "%llu unreadable, %llu with special-token text, %llu not matching --ext)", list.n,
                (unsigned long long)st.n_binary, (unsigned long long)st.n_not_utf8, (unsigned long long)st.n_empty,
                (unsigned long long)(st.n_large + list.skipped_large),
                (unsigned long long)(st.n_unreadable + list.skipped_unreadable), (unsigned long long)st.n_special,
                (unsigned long long)list.skipped_ext);
        goto done;
    }
    /* the tokenizer travels with its shards: train, quantize and complete then find it without --tokenizer */
    path_join(tok_copy, sizeof tok_copy, out, "tokenizer.json");
    if (access(tok_copy, F_OK) != 0) wrote_tok = 1;
    if (copy_tokenizer(tok_path, tok_copy)) goto done;
    if (shard_set_finish(sets[0]) || shard_set_finish(sets[1])) goto done;
    print_summary(&st, &list, sets, wo.vocab_size <= 65536 ? 2 : 4, clock_now() - t0, started, (uint64_t)max_size);
    if (val_fraction > 0 && shard_set_documents(sets[1]) == 0)
        fprintf(stderr, "smallcoder tokenize: warning: no document fell into the val split (corpus too small for "
                        "--val-fraction %g)\n", val_fraction);
    rc = 0;
done:
    if (started) {
        pthread_mutex_lock(&p.mu);
        p.stop = 1;
        pthread_cond_broadcast(&p.cv_work);
        pthread_mutex_unlock(&p.mu);
        for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
        for (size_t i = 0; i < p.ring_n; i++) free(p.ring[i].ids), free(p.ring[i].error);
    }
    if (p.ring) {
        pthread_mutex_destroy(&p.mu);
        pthread_cond_destroy(&p.cv_work);
        pthread_cond_destroy(&p.cv_done);
    }
    if (rc != 0) {
        for (int s = 0; s < 2; s++)
            if (sets[s]) shard_set_discard(sets[s]);
        if (wrote_tok) unlink(tok_copy);
        if (created) rmdir(out);
        fprintf(stderr, "smallcoder tokenize: %s\n", sc_error());
    }
    signals_restore(old_signals);
    for (int s = 0; s < 2; s++) shard_set_free(sets[s]);
    free(p.ring);
    free(tids);
    free(dedup.keys);
    corpus_list_free(&list);
    corpus_filter_free(&filter);
    if (tok) tokenizer_free(tok);
    return rc == 0 ? 0 : 1;
}
