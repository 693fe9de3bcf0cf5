/* fim_format.c — each family's FIM prompt layout and end tokens, looked up in the tokenizer (see fim_format.h).
 * The sentinels come from data/fim_family.h, the table training lays documents out with. */
#include "infer/fim_format.h"

#include <string.h>

#include "data/fim_family.h"
#include "host/error.h"

/* what ends a completion: each family's end of text / end of turn, and every FIM sentinel (a model that emits one
 * has left the middle) */
static const char *const end_tokens[] = {
    "<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<file_sep>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>",
    "<|im_end|>", "<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
    "</s>", "▁<EOT>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>",
};

const char *fim_format_names(void) { return "auto, starcoder, qwen, deepseek, codellama"; }

static int resolve(const sc_tokenizer *tok, const fim_family *f, fim_format *out) {
    out->name = f->name;
    out->pre = tokenizer_token_id(tok, f->pre);
    out->suf = tokenizer_token_id(tok, f->suf);
    out->mid = tokenizer_token_id(tok, f->mid);
    /* the BOS of a plain prompt too: the tokenizer's post-processor (DeepSeek-Coder's and CodeLlama's add one; the
     * DeepSeek-Coder model card encodes "<｜fim▁begin｜>..." with tokenizer(), so its BOS comes first) */
    out->bos = tokenizer_bos_id(tok);
    out->file_sep = f->file_sep ? tokenizer_token_id(tok, f->file_sep) : -1;
    return out->pre >= 0 && out->suf >= 0 && out->mid >= 0;
}

int fim_format_find(const sc_tokenizer *tok, const char *name, fim_format *out) {
    int any = !name || !strcmp(name, "auto");
    for (int i = 0; i < fim_nfamilies; i++) {
        const fim_family *f = &fim_families[i];
        if (!any && strcmp(name, f->name)) continue;
        if (resolve(tok, f, out)) return 0;
        if (!any)
            return sc_fail("--fim-format %s: the tokenizer lacks %s/%s/%s", name, f->pre, f->suf, f->mid);
    }
    if (!any) return sc_fail("--fim-format '%s' is unknown (one of: %s)", name, fim_format_names());
    return sc_fail("the tokenizer has no fill-in-the-middle tokens of a known family (%s, %s, %s, %s)",
                   fim_families[0].pre, fim_families[1].pre, fim_families[2].pre, fim_families[3].pre);
}

int fim_is_end_token(const sc_tokenizer *tok, int32_t id) {
    for (size_t i = 0; i < sizeof end_tokens / sizeof end_tokens[0]; i++)
        if (id == tokenizer_token_id(tok, end_tokens[i])) return 1;
    return 0;
}
