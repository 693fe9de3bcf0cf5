/* kd_teacher.c — top-k extraction and the windowed teacher pass over one shard (see kd_teacher.h). The teacher
 * is the FP32 CPU model (host/model_cpu.h) or an inference engine (host/engine.h); entries are gathered frame by frame so each .kd frame is written as
 * soon as the matching shard frame's positions are done. */
#include "distill/kd_teacher.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "data/shard.h"

void kd_topk_rows(const float *logits, int n, int V, int k, float temp, int32_t *ids, float *vals, float *lse) {
    const float inv = 1.0f / temp;
#pragma omp parallel for schedule(static) if (n > 1)
    for (int r = 0; r < n; r++) {
        const float *l = logits + (int64_t)r * V;
        int32_t *ri = ids + (int64_t)r * k;
        float *rv = vals + (int64_t)r * k;
        int cnt = 0;
        float mx = -INFINITY;
        for (int j = 0; j < V; j++) {
            float v = l[j] * inv;
            if (v > mx) mx = v;
            if (cnt == k && !(v > rv[k - 1])) continue;
            int p = cnt < k ? cnt++ : k - 1; /* insertion into the descending list; equal values keep the lower id */
            while (p > 0 && v > rv[p - 1]) rv[p] = rv[p - 1], ri[p] = ri[p - 1], p--;
            rv[p] = v, ri[p] = j;
        }
        double s = 0;
        for (int j = 0; j < V; j++) s += exp((double)(l[j] * inv) - mx);
        lse[r] = (float)((double)mx + log(s));
    }
}

void kd_teacher_run_init(kd_teacher_run *r, const sc_model *m, int context) {
    memset(r, 0, sizeof *r);
    r->m = m, r->V = m->cfg.vocab_size;
    r->acts = sc_calloc(1, sizeof *r->acts);
    cpu_acts_create(r->acts, &m->cfg, context);
    r->logits = sc_malloc(sizeof(float) * (size_t)context * (size_t)m->cfg.vocab_size);
    r->tokens = sc_malloc(sizeof(int32_t) * (size_t)context);
    r->targets = sc_malloc(sizeof(int32_t) * (size_t)context);
    for (int i = 0; i < context; i++) r->targets[i] = -1;
}

void kd_teacher_run_init_engine(kd_teacher_run *r, sc_engine *e, int context) {
    memset(r, 0, sizeof *r);
    r->eng = e, r->V = e->cfg->vocab_size;
    engine_kv_create(e, &r->kv, context);
    r->logits = sc_malloc(sizeof(float) * (size_t)context * (size_t)r->V);
    r->tokens = sc_malloc(sizeof(int32_t) * (size_t)context);
}

void kd_teacher_run_free(kd_teacher_run *r) {
    if (r->eng) kv_free(&r->kv);
    if (r->acts) cpu_acts_free(r->acts);
    free(r->acts), free(r->logits), free(r->tokens), free(r->targets);
    memset(r, 0, sizeof *r);
}

int kd_teacher_write_shard(kd_teacher_run *r, const char *shard_path, const char *kd_path, const kd_header *hin,
                           void (*progress)(void *ctx, uint64_t done), void *pctx, uint64_t *bytes_out) {
    shard_reader *s;
    if (shard_open(&s, shard_path)) return -1;
    const shard_header *sh = shard_info(s);
    const int V = r->V, W = hin->context, O = hin->overlap, k = (int)hin->k;
    kd_header h = *hin;
    h.vocab_size = (uint32_t)V;
    h.frame_count = sh->frame_count;
    h.token_count = sh->token_count;
    h.tokenizer_hash = sh->tokenizer_hash;
    h.frame_tokens = sh->frame_tokens;
    int rc = kd_shard_header_hash(shard_path, &h.shard_header_hash);
    if (!rc && sh->vocab_size > (uint32_t)V)
        rc = sc_fail("%s: shard vocabulary %u is larger than the teacher's %d", shard_path, sh->vocab_size, V);
    kd_writer *w = NULL;
    if (!rc) rc = kd_writer_open(&w, kd_path, &h, 0);
    if (rc) {
        shard_close(s);
        return -1;
    }
    const uint64_t N = sh->token_count;
    size_t ft = sh->frame_tokens;
    int32_t *fids = sc_malloc(sizeof(int32_t) * ft * (size_t)k);
    float *fvals = sc_malloc(sizeof(float) * ft * (size_t)k), *flse = sc_malloc(sizeof(float) * ft);
    uint32_t frame = 0;
    size_t infr = 0; /* entries of the current frame gathered so far */
    for (uint64_t w0 = 0; !rc && w0 < N; w0 += (uint64_t)(W - O)) {
        size_t n = N - w0 < (uint64_t)W ? (size_t)(N - w0) : (size_t)W;
        size_t keep0 = w0 ? (size_t)O : 0;
        if (keep0 >= n) break; /* the previous window already reached the end */
        if ((rc = shard_read_tokens(s, w0, n, r->tokens))) break;
        int cnt;
        if (r->eng) { /* every window from an empty cache, as the CPU model sees it */
            if ((rc = engine_kv_rollback(&r->kv, 0)) ||
                (rc = engine_forward_all(r->eng, &r->kv, r->tokens, (int)n, r->logits)))
                break;
        } else {
            model_cpu_step(r->m, r->acts, r->tokens, r->targets, (int)n, r->logits, NULL, 0.0f, &cnt);
        }
        for (size_t p = keep0; p < n && !rc;) {
            size_t fn = shard_frame_info(s, frame)->token_count, m = n - p;
            if (m > fn - infr) m = fn - infr;
            kd_topk_rows(r->logits + p * (size_t)V, (int)m, V, k, h.temperature, fids + infr * (size_t)k,
                         fvals + infr * (size_t)k, flse + infr);
            infr += m, p += m;
            if (infr == fn) {
                rc = kd_writer_append_frame(w, fids, fvals, flse, (uint32_t)fn);
                frame++, infr = 0;
            }
        }
        if (progress) progress(pctx, w0 + n);
        if (w0 + n >= N) break;
    }
    free(fids), free(fvals), free(flse);
    shard_close(s);
    if (rc) {
        kd_writer_abort(w);
        return -1;
    }
    uint64_t bytes = kd_writer_bytes(w) + (uint64_t)h.frame_count * KD_INDEX_ENTRY_SIZE;
    if (kd_writer_close(w)) return -1;
    if (bytes_out) *bytes_out = bytes;
    return 0;
}
