/* fim_tokenizer.c — binds FIM to a real tokenizer: the sentinel ids looked up by name and the decode/encode
 * codec that character-level splitting needs (see fim.h). */
#include <string.h>

#include "host/error.h"
#include "data/fim.h"
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
    fim_tokens ids = {tokenizer_token_id(tok, SC_TOK_FIM_PREFIX), tokenizer_token_id(tok, SC_TOK_FIM_MIDDLE),
                      tokenizer_token_id(tok, SC_TOK_FIM_SUFFIX), tokenizer_token_id(tok, SC_TOK_FIM_PAD),
                      tokenizer_token_id(tok, SC_TOK_ENDOFTEXT)};
    fim_options_default(o, ids);
    o->rate = rate;
    o->codec = fim_codec_from_tokenizer(tok);
    return fim_options_check(o);
}
