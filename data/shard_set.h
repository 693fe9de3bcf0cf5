/* shard_set.h — a numbered series of shards for one split (DIR/train-00000.tok, -00001, ...): documents are
 * appended whole, each followed by the end-of-text id the caller gives, and a new shard starts once one reaches
 * shard_tokens.
 * Everything written can be removed again, so a failed `tokenize` leaves nothing behind. */
#ifndef SC_SHARD_SET_H
#define SC_SHARD_SET_H

#include <stddef.h>
#include <stdint.h>

#include "data/shard.h"

typedef struct shard_set shard_set;

/* No file is created until the first document arrives. */
shard_set *shard_set_create(const char *dir, const char *split, const shard_writer_options *opt, uint64_t shard_tokens);
int shard_set_add_document(shard_set *s, const int32_t *ids, size_t n, int32_t eot);
/* Commits the shard in progress. */
int shard_set_finish(shard_set *s);
/* Aborts the shard in progress and deletes every shard this set committed. */
void shard_set_discard(shard_set *s);
void shard_set_free(shard_set *s);

uint64_t shard_set_tokens(const shard_set *s);
uint64_t shard_set_documents(const shard_set *s);
int shard_set_files(const shard_set *s);
uint64_t shard_set_bytes(const shard_set *s);   /* bytes of the committed shard files */

#endif
