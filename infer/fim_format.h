/* fim_format.h — fill-in-the-middle prompts in each model family's own format, found from the tokenizer's added
 * tokens (or named by --fim-format; the sentinels are data/fim_family.h's, which training uses too), and the end
 * tokens generation stops at. <bos> is what the tokenizer's post-processor prepends (tokenizer_bos_id):
 *   starcoder  <fim_prefix>P<fim_suffix>S<fim_middle>                        (StarCoder, SmolLM, SmallCoder)
 *   qwen       <|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>                  (Qwen2.5-Coder)
 *   deepseek   <bos><｜fim▁begin｜>P<｜fim▁hole｜>S<｜fim▁end｜>                 (DeepSeek-Coder)
 *   codellama  <s>▁<PRE>P▁<SUF>S▁<MID>                                        (CodeLlama; Meta's infilling order)
 * All are prefix-suffix-middle; the model's output is the middle. */
#ifndef SC_INFER_FIM_FORMAT_H
#define SC_INFER_FIM_FORMAT_H

#include <stdint.h>

#include "data/tokenizer.h"

typedef struct {
    const char *name;
    int32_t bos;            /* the tokenizer's post-processor BOS (deepseek, codellama as published), else -1 */
    int32_t pre, suf, mid;
    int32_t file_sep;       /* repository-context separator (starcoder <file_sep>, qwen <|file_sep|>), or -1 */
} fim_format;

/* name NULL or "auto": the first family whose three sentinels the tokenizer has (order above). Fails with one
 * line naming the missing tokens. */
int fim_format_find(const sc_tokenizer *tok, const char *name, fim_format *out);
/* "auto, starcoder, qwen, deepseek, codellama" for --help */
const char *fim_format_names(void);
/* 1 when id is an end-of-text or FIM sentinel token of any supported family (present in tok): generation stops */
int fim_is_end_token(const sc_tokenizer *tok, int32_t id);

#endif
