/* fim_family.h — the model families' fill-in-the-middle sentinels and end-of-text tokens, found in a tokenizer's
 * added tokens. Training (data/fim.c, via fim_options_from_tokenizer), `tokenize` (the document separator) and
 * inference (infer/fim_format.c: the prompt layout) all read this one table, so a model is trained on the layout
 * it is prompted with:
 *   starcoder  <fim_prefix> <fim_suffix> <fim_middle> <fim_pad>   (StarCoder, SmolLM, SmallCoder's own)
 *   qwen       <|fim_prefix|> <|fim_suffix|> <|fim_middle|> <|fim_pad|>                     (Qwen2.5-Coder)
 *   deepseek   <｜fim▁begin｜> <｜fim▁hole｜> <｜fim▁end｜>, no pad token                    (DeepSeek-Coder)
 *   codellama  ▁<PRE> ▁<SUF> ▁<MID>, no pad token                                                (CodeLlama) */
#ifndef SC_DATA_FIM_FAMILY_H
#define SC_DATA_FIM_FAMILY_H

#include <stdint.h>

#include "data/tokenizer.h"

typedef struct {
    const char *name, *pre, *suf, *mid;
    const char *pad;      /* NULL: the family has none */
    const char *file_sep; /* repository-context separator, or NULL */
} fim_family;

extern const fim_family fim_families[];
extern const int fim_nfamilies;

/* The first family (order above) whose three sentinels tok has, or NULL. */
const fim_family *fim_family_of(const sc_tokenizer *tok);
/* The document separator: the first end-of-text token of the families that tok has — <|endoftext|> (ours,
 * GPT-2, Qwen2, StarCoder, SmolLM), <｜end▁of▁sentence｜> (DeepSeek), <|end_of_text|> (Llama-3), </s> (Llama-2,
 * Mistral, CodeLlama): each family's EOS as its config.json names it for the base models. Returns the id and
 * sets *text (may be NULL) to the token's text, or -1. */
int32_t fim_family_eot(const sc_tokenizer *tok, const char **text);

#endif
