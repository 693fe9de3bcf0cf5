/* kd_teacher.h — running a teacher over token streams: top-k + logsumexp of logit rows (shared by the offline
 * `smallcoder teacher` and the online --teacher of train), and one shard's .kd written with overlapping windows. */
#ifndef SC_KD_TEACHER_H
#define SC_KD_TEACHER_H

#include <stdint.h>

#include "distill/kd_format.h"
#include "host/engine.h"
#include "host/model.h"
#include "host/model_cpu.h"

/* For n rows of V logits: the k largest of logits/temp in descending order (ids, values) and the logsumexp of
 * the whole row of logits/temp. Ties go to the lower id. */
void kd_topk_rows(const float *logits, int n, int V, int k, float temp, int32_t *ids, float *vals, float *lse);

/* Teacher windows over a stream of N tokens: window i starts at i * (context - overlap) and runs `context`
 * tokens; it contributes positions from its start + overlap on (window 0: from 0), so every position past the
 * first window sees at least `overlap` tokens of context and each position is produced exactly once. */
typedef struct {
    int context, overlap;
} kd_windows;

typedef struct {
    const sc_model *m;       /* the FP32 CPU model (NULL when an engine runs the teacher) */
    sc_cpu_acts *acts;       /* for context tokens */
    sc_engine *eng;          /* an inference engine (`teacher --device cuda`: the CUDA engine, FP16 or INT8) */
    sc_kv kv;                /* its cache of context positions, emptied before every window */
    int V;
    float *logits;           /* [context, V] */
    int32_t *tokens, *targets;
} kd_teacher_run;

void kd_teacher_run_init(kd_teacher_run *r, const sc_model *m, int context);
/* The teacher on an open engine (which must outlive the run): each window is one engine_forward_all from an
 * empty cache, every position's logits out. */
void kd_teacher_run_init_engine(kd_teacher_run *r, sc_engine *e, int context);
void kd_teacher_run_free(kd_teacher_run *r);
/* Writes one .kd for the shard at shard_path (h: k, temperature, teacher, context, overlap; the rest is taken
 * from the shard). progress(ctx, tokens_done) is called after every window. */
int kd_teacher_write_shard(kd_teacher_run *r, const char *shard_path, const char *kd_path, const kd_header *h,
                           void (*progress)(void *ctx, uint64_t done), void *pctx, uint64_t *bytes_out);

#endif
