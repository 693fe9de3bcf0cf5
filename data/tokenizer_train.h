/* tokenizer_train.h — training a byte-level BPE tokenizer on a corpus and writing it as an HF tokenizer.json.
 * Layout of the result (ids): 0..5 the special tokens below (as HF's BpeTrainer and StarCoder put them
 * first), 6..261 the 256 single bytes in byte order, then one token per merge in merge order. */
#ifndef SC_TOKENIZER_TRAIN_H
#define SC_TOKENIZER_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer.h"

/* The special tokens, in id order 0..TOKENIZER_NSPECIAL-1. */
#define TOKENIZER_NSPECIAL 6
extern const char *const tokenizer_specials[TOKENIZER_NSPECIAL];

typedef struct {
    int vocab_size;          /* total ids: specials + 256 bytes + merges (default 32768) */
    int min_frequency;       /* a pair seen fewer times is never merged (default 2) */
    int threads;             /* word-counting threads, 0 = all cores */
    int progress;            /* progress lines on stderr */
    int64_t max_file_bytes;  /* larger files are skipped and counted (default 8 MiB) */
} tokenizer_train_options;

void tokenizer_train_defaults(tokenizer_train_options *opt);

/* Default --ext of `tokenizer train`: source code, configuration and the docs that travel with code. */
#define TOKENIZER_DEFAULT_EXTS                                                                                    \
    ".py,.pyi,.c,.h,.cc,.cpp,.cxx,.hpp,.hh,.cu,.cuh,.rs,.go,.java,.kt,.scala,.js,.mjs,.ts,.tsx,.jsx,.rb,.php,.pl," \
    ".pm,.lua,.sh,.bash,.swift,.m,.mm,.cs,.sql,.r,.jl,.hs,.ml,.ex,.exs,.erl,.clj,.el,.vim,.cmake,.mk,.toml,"     \
    ".yaml,.yml,.json,.md,.rst,.txt,.html,.css,.xml,.S,.asm"

typedef struct {
    size_t files, skipped_binary, skipped_not_utf8, skipped_large, unreadable;
    uint64_t bytes, words, unique_words;
    int vocab_size, merges;
    double count_seconds, merge_seconds;
} tokenizer_train_stats;

/* Trains on the given files (corpus.h's corpus_walk builds the list) and writes out_path atomically (temp
 * name + rename). Binary, non-UTF-8, empty, unreadable and oversized files are skipped and counted, as
 * `smallcoder tokenize` skips them; no usable text at all is an error. */
int tokenizer_train_files(char *const *paths, size_t n, const tokenizer_train_options *opt, const char *out_path,
                          tokenizer_train_stats *stats);

/* The same on in-memory texts (tests). */
int tokenizer_train_texts(const char *const *texts, const size_t *lens, size_t n,
                          const tokenizer_train_options *opt, const char *out_path, tokenizer_train_stats *stats);

/* ---- writing tokenizer.json (tokenizer_write.c) ---- */

/* A byte-level BPE model: tokens 0..nspecial-1 are the specials' texts; the others are raw byte strings. */
typedef struct {
    const char *const *specials;
    int nspecial;
    int ntokens;
    const uint8_t *blob;          /* token i (>= nspecial) is blob[off[i] .. off[i] + len[i]) */
    const uint64_t *off;
    const uint32_t *len;
    const int32_t (*merges)[2];   /* in rank order */
    int nmerges;
} tokenizer_model_desc;

/* The HF tokenizer.json text (malloc'd, NUL-terminated) for the model: BPE, ByteLevel pre-tokenizer (GPT-2
 * regex, no prefix space), ByteLevel decoder, the specials as special added tokens. */
char *tokenizer_json_render(const tokenizer_model_desc *m);

#endif
