/* loader.h — training and evaluation windows from a shard directory (train-*.tok or val-*.tok).
 *
 * The shards of a split, in name order, form one token stream of N tokens. A window is T+1 consecutive tokens
 * (inputs [0,T), targets [1,T+1)); window i of an epoch starts at shift + i*T, i < W = (N-1)/T, so the windows
 * of an epoch tile the stream and every token is a target once per epoch.
 *   random order (training): the window served at position p is i = perm_e(p mod W) in epoch e = p / W, where
 *     perm_e is a keyed Feistel permutation of [0, W) and shift a per-epoch draw in [0, (N-1) - W*T]; both are
 *     pure functions of (seed, e). So the state is just (seed, position): resume = set the position.
 *   sequential order (evaluation): position p serves window p mod W with shift 0.
 * FIM (fim.h) is applied to each served window with the key (seed, position), so it is reproduced exactly too.
 * Not thread-safe: one loader per thread. */
#ifndef SC_LOADER_H
#define SC_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "data/fim.h"

typedef struct cJSON cJSON;
typedef struct loader loader;

typedef enum { LOADER_RANDOM = 0, LOADER_SEQUENTIAL = 1 } loader_order;

typedef struct {
    const char *dir;
    const char *split;          /* "train" or "val": reads DIR/<split>-*.tok */
    int seq_len;                /* T; windows hold T+1 tokens */
    loader_order order;
    uint64_t seed;
    uint64_t tokenizer_hash;    /* nonzero: every shard must carry this hash (the model's tokenizer) */
    fim_options fim;            /* fim.rate == 0: no FIM */
} loader_options;

/* Everything needed to continue exactly where a run stopped, plus what identifies the data it refers to
 * (restoring onto a different shard set or window length is refused). */
typedef struct {
    uint64_t seed;
    uint64_t position;          /* windows served so far */
    uint64_t total_tokens;      /* N of the split when the state was taken */
    uint64_t tokenizer_hash;
    int seq_len;
    loader_order order;
} loader_state;

/* Opens every DIR/<split>-*.tok, checks they agree (tokenizer hash, vocab size) and hold at least T+1 tokens. */
int loader_open(loader **out, const loader_options *opt);
void loader_close(loader *l);

/* Next window: T+1 ids into out; advances the position. */
int loader_next(loader *l, int32_t *out);
/* The window served at a given position (no state change); what loader_next returns there. */
int loader_window_at(loader *l, uint64_t position, int32_t *out);
/* Stream index of the first token of the window at position (before FIM). */
uint64_t loader_window_start(const loader *l, uint64_t position);

uint64_t loader_windows_per_epoch(const loader *l);   /* W */
uint64_t loader_total_tokens(const loader *l);        /* N */
uint64_t loader_documents(const loader *l);           /* sum of the shards' document counts */
int loader_shard_count(const loader *l);
uint64_t loader_tokenizer_hash(const loader *l);
uint32_t loader_vocab_size(const loader *l);
const fim_stats *loader_fim_stats(const loader *l);

loader_state loader_get_state(const loader *l);
int loader_set_state(loader *l, const loader_state *s);
/* JSON form for trainer_state.json: {"seed":..,"position":..,"total_tokens":..,"tokenizer_hash":"hex",
 * "seq_len":..,"order":"random"|"sequential"}; 64-bit values are strings so no precision is lost. */
cJSON *loader_state_to_json(const loader_state *s);
int loader_state_from_json(const cJSON *j, loader_state *s);

/* Reads tokens [start, start+n) of the split's stream (spanning shards as needed). */
int loader_read_tokens(loader *l, uint64_t start, size_t n, int32_t *out);

#endif
