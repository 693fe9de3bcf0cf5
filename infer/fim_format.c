/* fim_format.c — each family's FIM sentinels and end tokens, looked up in the tokenizer (see fim_format.h). */
#include "infer/fim_format.h"

#include <string.h>

#include "host/error.h"

typedef struct {
    const char *name, *bos, *pre, *suf, *mid, *file_sep;
} family;

/* detection order: a tokenizer with several families' tokens takes the first */
static const family families[] = {
    {"starcoder", NULL, "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"},
    {"qwen", NULL, "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>"},
    {"deepseek", "<｜begin▁of▁sentence｜>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", NULL},
    {"codellama", "<s>", "▁<PRE>", "▁<SUF>", "▁<MID>", NULL},
};
enum { NFAM = sizeof families / sizeof families[0] };

/* what ends a completion: each family's end of text / end of turn, and every FIM sentinel (a model that emits one
 * has left the middle) */
static const char *const end_tokens[] = {
    "<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<file_sep>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>",
    "<|im_end|>", "<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
    "</s>", "▁<EOT>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>",
};

const char *fim_format_names(void) { return "auto, starcoder, qwen, deepseek, codellama"; }

static int resolve(const sc_tokenizer *tok, const family *f, fim_format *out) {
    out->name = f->name;
    out->pre = tokenizer_token_id(tok, f->pre);
    out->suf = tokenizer_token_id(tok, f->suf);
    out->mid = tokenizer_token_id(tok, f->mid);
    out->bos = f->bos ? tokenizer_token_id(tok, f->bos) : -1;
    out->file_sep = f->file_sep ? tokenizer_token_id(tok, f->file_sep) : -1;
    return out->pre >= 0 && out->suf >= 0 && out->mid >= 0;
}

int fim_format_find(const sc_tokenizer *tok, const char *name, fim_format *out) {
    int any = !name || !strcmp(name, "auto");
    for (int i = 0; i < NFAM; i++) {
        const family *f = &families[i];
        if (!any && strcmp(name, f->name)) continue;
        if (resolve(tok, f, out)) return 0;
        if (!any)
            return sc_fail("--fim-format %s: the tokenizer lacks %s/%s/%s", name, f->pre, f->suf, f->mid);
    }
    if (!any) return sc_fail("--fim-format '%s' is unknown (one of: %s)", name, fim_format_names());
    return sc_fail("the tokenizer has no fill-in-the-middle tokens of a known family (%s, %s, %s, %s)",
                   families[0].pre, families[1].pre, families[2].pre, families[3].pre);
}

int fim_is_end_token(const sc_tokenizer *tok, int32_t id) {
    for (size_t i = 0; i < sizeof end_tokens / sizeof end_tokens[0]; i++)
        if (id == tokenizer_token_id(tok, end_tokens[i])) return 1;
    return 0;
}
