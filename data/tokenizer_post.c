/* tokenizer_post.c — the tokenizer.json post_processor: what HF's `tokenizer(text)` (add_special_tokens=True)
 * puts around one sequence. Llama-2/TinyLlama/CodeLlama, Llama-3.x and DeepSeek-Coder prepend their BOS through a
 * TemplateProcessing (`<s> $A`, `<|begin_of_text|> $A`, `<｜begin▁of▁sentence｜> $A`; Llama-3.x inside a
 * Sequence after ByteLevel); Qwen2 and SmolLM have a ByteLevel post-processor, which adds nothing. A prompt
 * encoded without them is not what the model saw in training (llama.cpp's add_bos does the same), so generation,
 * tokenize and export use the ids parsed here. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "data/tokenizer_internal.h"

static void ids_add(int32_t **v, int *n, const int32_t *ids, int k, int at_front) {
    int32_t *o = sc_malloc((size_t)(*n + k + 1) * sizeof *o);
    if (at_front) {
        memcpy(o, ids, (size_t)k * sizeof *o);
        if (*n) memcpy(o + k, *v, (size_t)*n * sizeof *o);
    } else {
        if (*n) memcpy(o, *v, (size_t)*n * sizeof *o);
        memcpy(o + *n, ids, (size_t)k * sizeof *o);
    }
    free(*v);
    *v = o, *n += k;
}

static int check_id(const sc_tokenizer *t, double id, const char *what) {
    if (!(id >= 0 && id < t->vocab_size) || id != (double)(int32_t)id || !t->id_str[(int32_t)id])
        return sc_fail("post_processor %s: id %g is not in the vocabulary (size %d)", what, id, t->vocab_size);
    return 0;
}

/* TemplateProcessing's "single": SpecialToken pieces before $A go in front, after it at the back; each one's ids
 * come from "special_tokens" (HF takes them from there, not from the vocabulary). */
static int parse_template(sc_tokenizer *t, const cJSON *p, int32_t *pre, int *npre, int32_t **suf, int *nsuf) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens"), *piece;
    if (!cJSON_IsArray(single)) return sc_fail("post_processor TemplateProcessing: \"single\" is not an array");
    int seen_a = 0;
    cJSON_ArrayForEach(piece, single) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(piece, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(piece, "SpecialToken");
        if (seq) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(seq, "id");
            if (!cJSON_IsString(id) || strcmp(id->valuestring, "A") || seen_a++)
                return sc_fail("post_processor TemplateProcessing: \"single\" must hold the sequence $A once");
            continue;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
        if (!cJSON_IsString(name))
            return sc_fail("post_processor TemplateProcessing: a \"single\" piece is neither Sequence nor SpecialToken");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(specials, name->valuestring), "ids");
        if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) < 1)
            return sc_fail("post_processor TemplateProcessing: special token '%s' has no ids in \"special_tokens\"",
                           name->valuestring);
        const cJSON *e;
        cJSON_ArrayForEach(e, ids) {
            if (!cJSON_IsNumber(e) || check_id(t, e->valuedouble, name->valuestring)) {
                if (!cJSON_IsNumber(e)) sc_fail("post_processor TemplateProcessing: '%s' ids must be numbers", name->valuestring);
                return -1;
            }
            int32_t id = (int32_t)e->valuedouble;
            if (!seen_a) {
                if (*npre >= 64) return sc_fail("post_processor TemplateProcessing: more than 64 tokens before $A");
                pre[(*npre)++] = id;
            } else {
                ids_add(suf, nsuf, &id, 1, 0);
            }
        }
    }
    if (!seen_a) return sc_fail("post_processor TemplateProcessing: \"single\" has no $A");
    return 0;
}

/* RobertaProcessing / BertProcessing: cls $A sep, each given as ["token", id] */
static int parse_cls_sep(sc_tokenizer *t, const cJSON *p, const char *type, int32_t *pre, int *npre, int32_t **suf,
                         int *nsuf) {
    const cJSON *cls = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(p, "cls"), 1);
    const cJSON *sep = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(p, "sep"), 1);
    if (!cJSON_IsNumber(cls) || !cJSON_IsNumber(sep))
        return sc_fail("post_processor %s: \"cls\" and \"sep\" must be [token, id]", type);
    if (check_id(t, cls->valuedouble, "cls") || check_id(t, sep->valuedouble, "sep")) return -1;
    pre[(*npre)++] = (int32_t)cls->valuedouble;
    int32_t s = (int32_t)sep->valuedouble;
    ids_add(suf, nsuf, &s, 1, 0);
    return 0;
}

/* One processor (Sequence flattened; at most one of its processors may add tokens). */
static int parse_one(sc_tokenizer *t, const cJSON *p, int depth) {
    if (!p || cJSON_IsNull(p)) return 0;
    const cJSON *tp = cJSON_GetObjectItemCaseSensitive(p, "type");
    const char *type = cJSON_IsString(tp) ? tp->valuestring : NULL;
    if (!type) return sc_fail("post_processor: missing \"type\"");
    if (!strcmp(type, "ByteLevel")) return 0; /* offsets only */
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors"), *e;
        if (!cJSON_IsArray(list)) return sc_fail("post_processor Sequence: \"processors\" is not an array");
        if (depth > 4) return sc_fail("post_processor Sequence: nested too deep");
        cJSON_ArrayForEach(e, list)
            if (parse_one(t, e, depth + 1)) return -1;
        return 0;
    }
    int32_t pre[64];
    int npre = 0;
    int32_t *suf = NULL;
    int nsuf = 0, rc;
    if (!strcmp(type, "TemplateProcessing")) rc = parse_template(t, p, pre, &npre, &suf, &nsuf);
    else if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing"))
        rc = parse_cls_sep(t, p, type, pre, &npre, &suf, &nsuf);
    else rc = sc_fail("post_processor type '%s' is not supported (TemplateProcessing, ByteLevel, RobertaProcessing, "
                      "BertProcessing, Sequence)", type);
    /* HF's tokenizers (0.23) do not nest two such processors in a Sequence the way their order suggests (measured:
     * Sequence[<s> $A, </s> $A] gives "<s> text"): refused rather than guessed */
    if (!rc && (npre || nsuf) && (t->npost_pre || t->npost_suf))
        rc = sc_fail("post_processor Sequence: more than one processor adds tokens (%s); not supported", type);
    if (!rc) {
        if (npre) ids_add(&t->post_pre, &t->npost_pre, pre, npre, 1);
        if (nsuf) ids_add(&t->post_suf, &t->npost_suf, suf, nsuf, 0);
    }
    free(suf);
    return rc;
}

int tokenizer_parse_post(sc_tokenizer *t, const void *json) { return parse_one(t, json, 0); }

int tokenizer_special_prefix(const sc_tokenizer *tok, const int32_t **ids) {
    *ids = tok->post_pre;
    return tok->npost_pre;
}

int tokenizer_special_suffix(const sc_tokenizer *tok, const int32_t **ids) {
    *ids = tok->post_suf;
    return tok->npost_suf;
}

int32_t tokenizer_bos_id(const sc_tokenizer *tok) { return tok->npost_pre == 1 ? tok->post_pre[0] : -1; }

int tokenizer_encode_special(const sc_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n) {
    int32_t *body;
    size_t nb;
    if (tokenizer_encode(tok, text, len, &body, &nb)) return -1;
    size_t total = (size_t)tok->npost_pre + nb + (size_t)tok->npost_suf;
    int32_t *out = sc_malloc((total + 1) * sizeof *out);
    if (tok->npost_pre) memcpy(out, tok->post_pre, (size_t)tok->npost_pre * sizeof *out);
    if (nb) memcpy(out + tok->npost_pre, body, nb * sizeof *out);
    if (tok->npost_suf) memcpy(out + tok->npost_pre + nb, tok->post_suf, (size_t)tok->npost_suf * sizeof *out);
    free(body);
    *ids = out, *n = total;
    return 0;
}
