/* kd_train.c — the teacher side of distillation training (see kd_train.h). Offline, the train source is wrapped
 * so each served window's stream position is queued; the backend pops them in the same order (the trainer fetches
 * a step's windows, then runs its micro-batches in order) and gets entries [start, start+T) of the .kd stream:
 * entry j is the teacher's prediction of token j+1, exactly the target of input position j. */
#include "distill/kd_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/data_source.h"
#include "host/error.h"
#include "host/fileio.h"
#include "distill/kd_dir.h"
#include "distill/kd_format.h"
#include "host/cpu/kd_loss.h"
#include "distill/kd_teacher.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/tokenizer.h"

struct kd_train {
    kd_train_options o;
    int online, k;
    /* offline */
    batch_source inner;        /* the wrapped data source */
    int inner_open;
    int nfiles;
    kd_reader **r;
    uint64_t *first;           /* stream index of each file's first entry */
    uint64_t *fifo;
    size_t fifo_head, fifo_n, fifo_cap;
    /* online */
    sc_model teacher;
    kd_teacher_run run;
    /* the rows handed out */
    int cap_T;
    int32_t *ids;
    float *logits, *lse;
    char desc[256];
};

static void kd_rows_reserve(kd_train *k, int T) {
    if (T <= k->cap_T) return;
    free(k->ids), free(k->logits), free(k->lse);
    k->ids = sc_malloc(sizeof(int32_t) * (size_t)T * (size_t)k->k);
    k->logits = sc_malloc(sizeof(float) * (size_t)T * (size_t)k->k);
    k->lse = sc_malloc(sizeof(float) * (size_t)T);
    k->cap_T = T;
}

static void kd_fill(kd_train *k, kd_targets *out) {
    out->k = k->k, out->ids = k->ids, out->logits = k->logits, out->lse = k->lse;
    out->alpha = k->o.alpha, out->temperature = k->o.temperature, out->reverse = k->o.reverse;
}

/* ---- the wrapped train source ---- */
static int kd_src_next(void *ctx, int32_t *out) {
    kd_train *k = ctx;
    loader *l = data_source_loader(&k->inner);
    uint64_t start = loader_window_start(l, loader_get_state(l).position);
    if (k->inner.next(k->inner.ctx, out)) return -1;
    if (k->fifo_head + k->fifo_n == k->fifo_cap) {
        if (k->fifo_n) memmove(k->fifo, k->fifo + k->fifo_head, sizeof(uint64_t) * k->fifo_n); /* fifo is NULL at first */
        k->fifo_head = 0;
        if (k->fifo_n == k->fifo_cap) {
            k->fifo_cap = k->fifo_cap ? 2 * k->fifo_cap : 64;
            k->fifo = realloc(k->fifo, sizeof(uint64_t) * k->fifo_cap);
            if (!k->fifo) return sc_fail("out of memory");
        }
    }
    k->fifo[k->fifo_head + k->fifo_n++] = start;
    return 0;
}
static int kd_src_rewind(void *ctx) {
    kd_train *k = ctx;
    k->fifo_head = k->fifo_n = 0;
    return k->inner.rewind(k->inner.ctx);
}
static uint64_t kd_src_windows(void *ctx) { return ((kd_train *)ctx)->inner.windows(((kd_train *)ctx)->inner.ctx); }
static cJSON *kd_src_state_to_json(void *ctx) { return ((kd_train *)ctx)->inner.state_to_json(((kd_train *)ctx)->inner.ctx); }
static int kd_src_state_from_json(void *ctx, const cJSON *j) {
    kd_train *k = ctx;
    k->fifo_head = k->fifo_n = 0; /* an undone step: its windows will be served again */
    return k->inner.state_from_json(k->inner.ctx, j);
}
static void kd_src_close(void *ctx) {
    kd_train *k = ctx;
    if (k->inner_open) batch_source_close(&k->inner);
    k->inner_open = 0;
}

static int kd_offline_next(void *ctx, const int32_t *ids, int T, kd_targets *out) {
    kd_train *k = ctx;
    (void)ids;
    if (k->fifo_n == 0) return sc_fail("distillation: a sequence without a served window (internal error)");
    uint64_t start = k->fifo[k->fifo_head++];
    k->fifo_n--;
    kd_rows_reserve(k, T);
    for (size_t done = 0; done < (size_t)T;) {
        uint64_t pos = start + done;
        int f = 0;
        while (f + 1 < k->nfiles && pos >= k->first[f + 1]) f++;
        uint64_t n_in = kd_info(k->r[f])->token_count - (pos - k->first[f]);
        size_t m = (size_t)T - done < n_in ? (size_t)T - done : (size_t)n_in;
        if (m == 0) return sc_fail("distillation: stream position %llu past the teacher logits", (unsigned long long)pos);
        if (kd_read(k->r[f], pos - k->first[f], m, k->ids + done * (size_t)k->k, k->logits + done * (size_t)k->k,
                    k->lse + done))
            return -1;
        done += m;
    }
    kd_fill(k, out);
    return 0;
}

int kd_train_open_logits(kd_train **out, batch_source *train, const char *data_dir, const char *kd_dir,
                         int student_vocab, const kd_train_options *o) {
    *out = NULL;
    kd_train *k = sc_calloc(1, sizeof *k);
    k->o = *o;
    char **names = NULL;
    int n = kd_dir_list_shards(data_dir, "train", &names), rc = n < 0 ? -1 : 0;
    if (!rc && n == 0) rc = sc_fail("%s: no train-*.tok shards", data_dir);
    if (!rc) {
        k->r = sc_calloc((size_t)n, sizeof *k->r);
        k->first = sc_calloc((size_t)n, sizeof *k->first);
    }
    uint64_t pos = 0;
    for (int i = 0; !rc && i < n; i++) {
        char sp[4096], kp[4096];
        path_join(sp, sizeof sp, data_dir, names[i]);
        kd_dir_kd_path(kp, sizeof kp, kd_dir, names[i]);
        if (access(kp, F_OK) != 0) {
            rc = sc_fail("%s: missing: no teacher logits for shard %s (run smallcoder teacher --data %s --out %s)", kp,
                         sp, data_dir, kd_dir);
            break;
        }
        shard_reader *s;
        if ((rc = kd_open(&k->r[i], kp))) break;
        k->nfiles = i + 1;
        if ((rc = shard_open(&s, sp))) break;
        rc = kd_check_shard(k->r[i], s);
        shard_close(s);
        const kd_header *h = kd_info(k->r[i]);
        if (!rc && (int)h->vocab_size != student_vocab)
            rc = sc_fail("%s: teacher vocabulary %u, the student's is %d", kp, h->vocab_size, student_vocab);
        if (!rc && i > 0 && h->k != kd_info(k->r[0])->k)
            rc = sc_fail("%s: top-%u, but %s has top-%u", kp, h->k, names[0], kd_info(k->r[0])->k);
        k->first[i] = pos;
        pos += h->token_count;
    }
    if (names) kd_dir_free_names(names, n);
    if (rc) {
        kd_train_close(k);
        return -1;
    }
    const kd_header *h0 = kd_info(k->r[0]);
    k->k = (int)h0->k;
    snprintf(k->desc, sizeof k->desc, "teacher logits %s (%s, top-%u, %d file(s))", kd_dir, h0->teacher, h0->k, n);
    k->inner = *train;
    k->inner_open = 1;
    train->ctx = k;
    train->next = kd_src_next, train->rewind = kd_src_rewind, train->windows = kd_src_windows;
    train->state_to_json = kd_src_state_to_json, train->state_from_json = kd_src_state_from_json;
    train->close = kd_src_close;
    *out = k;
    return 0;
}

/* ---- online ---- */
static int kd_online_next(void *ctx, const int32_t *ids, int T, kd_targets *out) {
    kd_train *k = ctx;
    kd_rows_reserve(k, T);
    int cnt;
    model_cpu_step(&k->teacher, k->run.acts, ids, k->run.targets, T, k->run.logits, NULL, 0.0f, &cnt);
    kd_topk_rows(k->run.logits, T, k->teacher.cfg.vocab_size, k->k, 1.0f, k->ids, k->logits, k->lse);
    kd_fill(k, out);
    return 0;
}

int kd_train_open_teacher(kd_train **out, const char *teacher_dir, int student_vocab, uint64_t tok_hash, int seq,
                          const kd_train_options *o) {
    *out = NULL;
    kd_train *k = sc_calloc(1, sizeof *k);
    k->o = *o;
    k->online = 1;
    int rc = model_load(&k->teacher, teacher_dir);
    const sc_config *c = &k->teacher.cfg;
    if (!rc && c->vocab_size != student_vocab)
        rc = sc_fail("%s: teacher vocabulary %d, the student's is %d", teacher_dir, c->vocab_size, student_vocab);
    if (!rc && seq > c->max_position_embeddings)
        rc = sc_fail("%s: teacher context %d is shorter than --seq %d", teacher_dir, c->max_position_embeddings, seq);
    if (!rc && (o->top_k < 1 || o->top_k > c->vocab_size || o->top_k > KD_MAX_K))
        rc = sc_fail("--kd-top-k %d: must be between 1 and the vocabulary size %d", o->top_k, c->vocab_size);
    char tp[4096];
    if (!rc && tok_hash && access(path_join(tp, sizeof tp, teacher_dir, "tokenizer.json"), R_OK) == 0) {
        sc_tokenizer *tok;
        if (!(rc = tokenizer_load(&tok, tp))) {
            uint64_t h = tokenizer_hash(tok);
            tokenizer_free(tok);
            if (h != tok_hash)
                rc = sc_fail("%s: teacher tokenizer hash %016llx differs from the shards' %016llx: teacher and student "
                             "must share one tokenizer", tp, (unsigned long long)h, (unsigned long long)tok_hash);
        }
    }
    if (rc) {
        kd_train_close(k);
        return -1;
    }
    k->k = o->top_k;
    kd_teacher_run_init(&k->run, &k->teacher, seq);
    snprintf(k->desc, sizeof k->desc, "online teacher %s (%lld parameters, top-%d)", teacher_dir,
             (long long)k->teacher.nparams, k->k);
    *out = k;
    return 0;
}

train_kd kd_train_hook(kd_train *k) {
    train_kd h = {k, k->online ? kd_online_next : kd_offline_next};
    return h;
}

const char *kd_train_describe(const kd_train *k) { return k->desc; }

int kd_train_top_k(const kd_train *k) { return k->k; }

void kd_train_close(kd_train *k) {
    if (!k) return;
    for (int i = 0; i < k->nfiles; i++) kd_close(k->r[i]);
    free(k->r), free(k->first), free(k->fifo);
    if (k->online) {
        kd_teacher_run_free(&k->run);
        if (k->teacher.params) model_free(&k->teacher);
    }
    free(k->ids), free(k->logits), free(k->lse), free(k);
}
