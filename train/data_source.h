/* data_source.h — batch sources over a shard directory (data/loader.h): random windows of the train split for
 * training, sequential windows of the val split for evaluation. */
#ifndef SC_TRAIN_DATA_SOURCE_H
#define SC_TRAIN_DATA_SOURCE_H

#include <stdint.h>

#include "train/batch.h"
#include "data/fim.h"

/* random = 1: the loader's seeded random window order (training); 0: sequential windows from the start
 * (evaluation). tokenizer_hash 0 = any. fim: NULL or rate 0 = no fill-in-the-middle; otherwise windows are
 * FIM-transformed by the loader and targets equal to <fim_pad> carry no loss. */
int data_source_open(batch_source *s, const char *dir, const char *split, int seq, int random, uint64_t seed,
                     uint64_t tokenizer_hash, const fim_options *fim);
/* Whether DIR holds at least one <split>-*.tok shard. */
int data_source_has_split(const char *dir, const char *split);
/* Tokens in the split and the tokenizer hash of the shards (after open). */
uint64_t data_source_tokens(const batch_source *s);
uint64_t data_source_tokenizer_hash(const batch_source *s);
/* The loader behind a source (distillation maps each served window to its stream position). */
struct loader *data_source_loader(const batch_source *s);

#endif
