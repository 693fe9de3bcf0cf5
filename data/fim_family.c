/* fim_family.c — the families' FIM sentinels and end-of-text tokens (see fim_family.h). */
#include "data/fim_family.h"

#include <stddef.h>

/* detection order: a tokenizer with several families' tokens takes the first */
const fim_family fim_families[] = {
    {"starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>", "<file_sep>"},
    {"qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|file_sep|>"},
    {"deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", NULL, NULL},
    {"codellama", "▁<PRE>", "▁<SUF>", "▁<MID>", NULL, NULL},
};
const int fim_nfamilies = (int)(sizeof fim_families / sizeof fim_families[0]);

static const char *const end_of_text[] = {"<|endoftext|>", "<｜end▁of▁sentence｜>", "<|end_of_text|>", "</s>"};

const fim_family *fim_family_of(const sc_tokenizer *tok) {
    for (int i = 0; i < fim_nfamilies; i++) {
        const fim_family *f = &fim_families[i];
        if (tokenizer_token_id(tok, f->pre) >= 0 && tokenizer_token_id(tok, f->suf) >= 0 &&
            tokenizer_token_id(tok, f->mid) >= 0)
            return f;
    }
    return NULL;
}

int32_t fim_family_eot(const sc_tokenizer *tok, const char **text) {
    for (size_t k = 0; k < sizeof end_of_text / sizeof end_of_text[0]; k++) {
        int32_t id = tokenizer_token_id(tok, end_of_text[k]);
        if (id >= 0) {
            if (text) *text = end_of_text[k];
            return id;
        }
    }
    if (text) *text = NULL;
    return -1;
}
