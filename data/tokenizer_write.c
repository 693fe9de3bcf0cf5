/* tokenizer_write.c — renders a trained byte-level BPE model as HF tokenizer.json text (cJSON), in the
 * layout HF tokenizers itself saves, so HF loads it and encodes exactly as we do. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "data/tokenizer_internal.h"
#include "data/tokenizer_train.h"

const char *const tokenizer_specials[TOKENIZER_NSPECIAL] = {SC_TOK_ENDOFTEXT, SC_TOK_FIM_PREFIX, SC_TOK_FIM_MIDDLE,
                                                            SC_TOK_FIM_SUFFIX, SC_TOK_FIM_PAD,    SC_TOK_FILE_SEP};

static cJSON *bytelevel(const char *type_owner, int add_prefix_space, int trim_offsets) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type_owner);
    cJSON_AddBoolToObject(o, "add_prefix_space", add_prefix_space);
    cJSON_AddBoolToObject(o, "trim_offsets", trim_offsets);
    cJSON_AddBoolToObject(o, "use_regex", 1);
    return o;
}

/* Token text as HF stores it: specials verbatim, the others as byte-level characters. */
static char *token_text(const tokenizer_model_desc *m, int id, char *buf) {
    if (id < m->nspecial) return strcpy(buf, m->specials[id]);
    size_t k = bytes_to_bytelevel(m->blob + m->off[id], m->len[id], buf);
    buf[k] = 0;
    return buf;
}

static size_t max_text(const tokenizer_model_desc *m) {
    size_t mx = 64;
    for (int i = 0; i < m->ntokens; i++) {
        size_t n = i < m->nspecial ? strlen(m->specials[i]) : 2 * (size_t)m->len[i];
        if (n > mx) mx = n;
    }
    return mx;
}

char *tokenizer_json_render(const tokenizer_model_desc *m) {
    size_t cap = 2 * max_text(m) + 2;
    char *a = sc_malloc(cap), *b = sc_malloc(cap);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; i < m->nspecial; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", i);
        cJSON_AddStringToObject(t, "content", m->specials[i]);
        cJSON_AddBoolToObject(t, "single_word", 0);
        cJSON_AddBoolToObject(t, "lstrip", 0);
        cJSON_AddBoolToObject(t, "rstrip", 0);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddItemToArray(added, t);
    }
    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer", bytelevel("ByteLevel", 0, 1));
    cJSON_AddItemToObject(root, "post_processor", bytelevel("ByteLevel", 0, 0));
    cJSON_AddItemToObject(root, "decoder", bytelevel("ByteLevel", 0, 1));
    cJSON *model = cJSON_CreateObject();
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int i = 0; i < m->ntokens; i++) cJSON_AddNumberToObject(vocab, token_text(m, i, a), i);
    /* "a b" strings: every HF version reads them, and byte-level text never contains a space */
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (int i = 0; i < m->nmerges; i++) {
        token_text(m, m->merges[i][0], a);
        token_text(m, m->merges[i][1], b);
        size_t la = strlen(a);
        a[la] = ' ';
        strcpy(a + la + 1, b);
        cJSON_AddItemToArray(merges, cJSON_CreateString(a));
    }
    cJSON_AddItemToObject(root, "model", model);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    free(a);
    free(b);
    if (!text) sc_malloc((size_t)-1);
    return text;
}
