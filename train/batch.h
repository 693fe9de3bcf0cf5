/* batch.h — where the trainer's token windows come from. A source serves windows of seq+1 ids (inputs [0,seq),
 * targets [1,seq+1)) and can save and restore its position as JSON, which is all the trainer needs for exact
 * resume. data_source.c adapts data/loader.h (shard directories); tests plug in synthetic streams. */
#ifndef SC_TRAIN_BATCH_H
#define SC_TRAIN_BATCH_H

#include <stdint.h>

typedef struct cJSON cJSON;

typedef struct batch_source {
    void *ctx;
    int seq;                 /* T: windows hold T+1 ids */
    uint32_t vocab_size;     /* every id is below it */
    int32_t ignore_id;       /* targets equal to it carry no loss (e.g. <fim_pad>); -1 = none */
    /* Next window (T+1 ids into out), advancing the position. */
    int (*next)(void *ctx, int32_t *out);
    /* Back to the first window (evaluation restarts at the same place every time). */
    int (*rewind)(void *ctx);
    /* Distinct windows in one pass over the data. */
    uint64_t (*windows)(void *ctx);
    /* Position as JSON (caller deletes) / restore it; a state from other data is refused with a clear message. */
    cJSON *(*state_to_json)(void *ctx);
    int (*state_from_json)(void *ctx, const cJSON *j);
    void (*close)(void *ctx);
} batch_source;

/* Splits n windows of T+1 ids into ids [n,T] and targets [n,T] (ignore_id -> -1); returns counted targets. */
int64_t batch_split(const int32_t *windows, int n, int T, int32_t ignore_id, int32_t *ids, int32_t *targets);

static inline void batch_source_close(batch_source *s) {
    if (s && s->close) s->close(s->ctx);
    if (s) s->close = 0, s->ctx = 0;
}

#endif
