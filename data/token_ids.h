/* token_ids.h — reading whitespace-separated token ids from a text file, with errors that name the position. */
#ifndef SC_TOKEN_IDS_H
#define SC_TOKEN_IDS_H

#include <stddef.h>
#include <stdint.h>

/* Reads every id in path ("-" = stdin); each must be an integer in [0, vocab_size). *ids is malloc'd. */
int token_ids_read(const char *path, int vocab_size, int32_t **ids, size_t *n);

#endif
