/* fim_tokenizer.c — binds FIM to a real tokenizer: the sentinel ids of its family (fim_family.h), its
 * end-of-text and BOS tokens, and the decode/encode codec that character-level splitting needs (see fim.h). */
#include <string.h>

#include "host/error.h"
#include "data/fim.h"
#include "data/fim_family.h"
#include "data/tokenizer.h"

/* A window is a stretch of a token stream and its pieces continue one another: the _cont variants, so a
 * SentencePiece tokenizer neither strips a leading space nor adds a "▁" (the same as the plain calls for
 * byte-level tokenizers). */
static int codec_decode(void *ctx, const int32_t *ids, size_t n, char **text, size_t *len) {
    return tokenizer_decode_cont(ctx, ids, n, text, len);
}

static int codec_encode(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n) {
    return tokenizer_encode_cont(ctx, text, len, ids, n);
}

fim_codec fim_codec_from_tokenizer(const sc_tokenizer *tok) {
    fim_codec c = {(void *)tok, codec_decode, codec_encode};
    return c;
}

int fim_options_from_tokenizer(fim_options *o, const sc_tokenizer *tok, float rate) {
    const fim_family *f = fim_family_of(tok);
    const char *eot_text;
    int32_t eot = fim_family_eot(tok, &eot_text);
    memset(o, 0, sizeof *o);
    if (!f)
        return sc_fail("the tokenizer has no fill-in-the-middle tokens of a known family (%s, %s, %s, %s)",
                       fim_families[0].pre, fim_families[1].pre, fim_families[2].pre, fim_families[3].pre);
    if (eot < 0) return sc_fail("the tokenizer has no end-of-text token (%s, </s>, ...) to find documents by", SC_TOK_ENDOFTEXT);
    fim_tokens ids = {tokenizer_token_id(tok, f->pre), tokenizer_token_id(tok, f->mid), tokenizer_token_id(tok, f->suf),
                      f->pad ? tokenizer_token_id(tok, f->pad) : -1, eot};
    fim_options_default(o, ids);
    o->rate = rate;
    o->bos = tokenizer_bos_id(tok);
    o->codec = fim_codec_from_tokenizer(tok);
    return fim_options_check(o);
}
