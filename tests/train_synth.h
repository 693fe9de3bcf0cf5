/* train_synth.h — a synthetic batch_source for the trainer's C tests: window p is a pure function of (seed, p)
 * (a noisy counting pattern the model can learn), so order, resume and accumulation can be tested without shards. */
#ifndef SC_TEST_TRAIN_SYNTH_H
#define SC_TEST_TRAIN_SYNTH_H

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "train/batch.h"
#include "host/rng.h"

typedef struct {
    uint64_t seed, position;
    uint32_t vocab;
    int seq;
} synth_ctx;

static int synth_next(void *c, int32_t *out) {
    synth_ctx *s = c;
    sc_rng r;
    rng_seed(&r, s->seed * 1000003u + s->position++);
    int32_t cur = (int32_t)rng_below(&r, s->vocab);
    for (int t = 0; t <= s->seq; t++) {
        out[t] = cur;
        cur = rng_below(&r, 4) == 0 ? (int32_t)rng_below(&r, s->vocab) : (cur + 1) % (int32_t)s->vocab;
    }
    return 0;
}
static int synth_rewind(void *c) {
    ((synth_ctx *)c)->position = 0;
    return 0;
}
static uint64_t synth_windows(void *c) {
    (void)c;
    return 64;
}
static cJSON *synth_state(void *c) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "position", (double)((synth_ctx *)c)->position);
    return j;
}
static int synth_restore(void *c, const cJSON *j) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "position");
    if (!cJSON_IsNumber(p)) return -1;
    ((synth_ctx *)c)->position = (uint64_t)p->valuedouble;
    return 0;
}
static void synth_close(void *c) { free(c); }

static inline void synth_open(batch_source *b, uint64_t seed, int seq, uint32_t vocab, int32_t ignore_id) {
    synth_ctx *c = calloc(1, sizeof *c);
    c->seed = seed, c->vocab = vocab, c->seq = seq;
    *b = (batch_source){c, seq, vocab, ignore_id, synth_next, synth_rewind, synth_windows, synth_state, synth_restore,
                        synth_close};
}

/* A small model shape for fast tests (GQA 2:1). */
static inline sc_config synth_config(void) {
    sc_config c;
    config_preset(&c, "tiny");
    c.hidden_size = 32, c.intermediate_size = 64, c.num_hidden_layers = 2, c.num_attention_heads = 2;
    c.num_key_value_heads = 1, c.head_dim = 16, c.vocab_size = 48, c.max_position_embeddings = 64;
    return c;
}

#endif
