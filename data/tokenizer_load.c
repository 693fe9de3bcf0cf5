/* tokenizer_load.c — reads an HF tokenizer.json into an sc_tokenizer: BPE model (vocab, ranked merges,
 * ignore_merges, unk, byte_fallback, fuse_unk), added tokens, normalizers (tokenizer_normalize.c), the
 * ByteLevel / Sequence[Split, Digits, ByteLevel] or Metaspace (or no) pre-tokenizer and the ByteLevel or
 * SentencePiece-style decoder. Everything else is refused by name so a tokenizer we would encode differently
 * never loads. Also computes tokenizer_hash(). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/fileio.h"
#include "data/tokenizer_internal.h"

/* ids are bounded where they are read: the id tables are allocated for the largest id, so 2^30 would ask for
 * 8 GiB; 2^22 is also config.json's vocab_size bound (host/config.c) */
#define TOK_MAX_ID (1 << 22)

static uint64_t serial_counter;

uint64_t tokenizer_next_serial(void) { return __atomic_add_fetch(&serial_counter, 1, __ATOMIC_RELAXED); }

static const char *type_of(const cJSON *o) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* A JSON boolean field; a missing or null field gives def. */
static int get_bool(const cJSON *o, const char *name, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) *out = def;
    else if (cJSON_IsBool(v)) *out = cJSON_IsTrue(v);
    else return sc_fail("field '%s' must be true or false", name);
    return 0;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = sc_malloc(n);
    memcpy(d, s, n);
    return d;
}

static pre_step *add_step(sc_tokenizer *t) {
    t->steps = realloc(t->steps, (size_t)(t->nsteps + 1) * sizeof *t->steps);
    if (!t->steps) sc_malloc((size_t)-1);
    pre_step *st = &t->steps[t->nsteps++];
    memset(st, 0, sizeof *st);
    return st;
}

static int parse_behavior(const char *s, split_behavior *b) {
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *b = (split_behavior)i;
            return 0;
        }
    return sc_fail("pre_tokenizer Split: unknown behavior '%s'", s ? s : "(missing)");
}

/* Appends the steps of one pre-tokenizer object (flattening Sequence). */
static int parse_pretok(sc_tokenizer *t, const cJSON *p) {
    const char *type = type_of(p);
    char desc[512];
    if (!type) return sc_fail("pre_tokenizer: missing \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (!cJSON_IsArray(list)) return sc_fail("pre_tokenizer Sequence: \"pretokenizers\" must be an array");
        const cJSON *it;
        cJSON_ArrayForEach(it, list) if (parse_pretok(t, it)) return -1;
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        int aps = 1, use_regex = 1;
        if (get_bool(p, "add_prefix_space", 1, &aps) || get_bool(p, "use_regex", 1, &use_regex))
            return sc_fail_prefix("pre_tokenizer ByteLevel");
        pre_step *st = add_step(t);
        st->kind = PRE_BYTELEVEL;
        st->add_prefix_space = aps;
        if (use_regex && pretok_compile(TOK_GPT2_PATTERN, strlen(TOK_GPT2_PATTERN), 0, st)) return -1;
        snprintf(desc, sizeof desc, "ByteLevel(add_prefix_space=%d,use_regex=%d)", aps, use_regex);
        st->desc = xstrdup(desc);
        return 0;
    }
    if (strcmp(type, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
        const cJSON *src = cJSON_IsString(re) ? re : str;
        if (!cJSON_IsString(src)) return sc_fail("pre_tokenizer Split: pattern must be {\"Regex\": ...} or {\"String\": ...}");
        pre_step *st = add_step(t);
        st->kind = PRE_SPLIT;
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(p, "behavior");
        if (parse_behavior(cJSON_IsString(beh) ? beh->valuestring : NULL, &st->behavior)) return -1;
        if (get_bool(p, "invert", 0, &st->invert)) return sc_fail_prefix("pre_tokenizer Split");
        if (pretok_compile(src->valuestring, strlen(src->valuestring), src == str, st))
            return sc_fail_prefix("pre_tokenizer Split");
        size_t n = strlen(src->valuestring) + 128;
        st->desc = sc_malloc(n);
        snprintf(st->desc, n, "Split(%s=%s,behavior=%d,invert=%d)", src == str ? "String" : "Regex",
                 src->valuestring, (int)st->behavior, st->invert);
        return 0;
    }
    if (strcmp(type, "Metaspace") == 0) {
        /* HF's deserializer: prepend_scheme defaults to "always"; the older add_prefix_space=false means
         * "never"; split defaults to true */
        const cJSON *rep = cJSON_GetObjectItemCaseSensitive(p, "replacement");
        const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(p, "prepend_scheme");
        uint32_t cp;
        if (!cJSON_IsString(rep) || !rep->valuestring[0] ||
            tok_utf8_decode((const uint8_t *)rep->valuestring, strlen(rep->valuestring), &cp) !=
                (int)strlen(rep->valuestring))
            return sc_fail("pre_tokenizer Metaspace: \"replacement\" must be one character");
        int aps = 1, split = 1;
        if (get_bool(p, "add_prefix_space", 1, &aps) || get_bool(p, "split", 1, &split))
            return sc_fail_prefix("pre_tokenizer Metaspace");
        meta_scheme ms = META_ALWAYS;
        if (scheme && !cJSON_IsNull(scheme)) {
            const char *v = cJSON_IsString(scheme) ? scheme->valuestring : "";
            if (strcmp(v, "always") == 0) ms = META_ALWAYS;
            else if (strcmp(v, "first") == 0) ms = META_FIRST;
            else if (strcmp(v, "never") == 0) ms = META_NEVER;
            else return sc_fail("pre_tokenizer Metaspace: prepend_scheme must be \"always\", \"first\" or \"never\"");
        }
        if (!aps) ms = META_NEVER;
        pre_step *st = add_step(t);
        st->kind = PRE_METASPACE;
        st->behavior = SPLIT_MERGED_NEXT;
        strcpy(st->meta_rep, rep->valuestring);
        st->meta_prepend = ms;
        if (split && pretok_compile(rep->valuestring, strlen(rep->valuestring), 1, st)) return -1;
        snprintf(desc, sizeof desc, "Metaspace(%s,prepend=%d,split=%d)", rep->valuestring, (int)ms, split);
        st->desc = xstrdup(desc);
        return 0;
    }
    if (strcmp(type, "Digits") == 0) {
        int individual = 0;
        if (get_bool(p, "individual_digits", 0, &individual)) return sc_fail_prefix("pre_tokenizer Digits");
        /* HF splits on char::is_numeric, i.e. general category N */
        pre_step *st = add_step(t);
        st->kind = PRE_SPLIT;
        st->behavior = individual ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS;
        if (pretok_compile("\\p{N}", 5, 0, st)) return -1;
        snprintf(desc, sizeof desc, "Digits(individual_digits=%d)", individual);
        st->desc = xstrdup(desc);
        return 0;
    }
    return sc_fail("pre_tokenizer type '%s' is not supported (ByteLevel, Split, Digits, Metaspace or a Sequence of "
                   "them)", type);
}

/* 1 when the pre-tokenizer object has a ByteLevel step: the model's symbols are then bytes. */
static int has_bytelevel(const cJSON *p) {
    const char *type = p && cJSON_IsObject(p) ? type_of(p) : NULL;
    if (!type) return 0;
    if (strcmp(type, "ByteLevel") == 0) return 1;
    const cJSON *it, *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
    if (strcmp(type, "Sequence") == 0 && cJSON_IsArray(list)) cJSON_ArrayForEach(it, list) if (has_bytelevel(it)) return 1;
    return 0;
}

/* The decoder of a SentencePiece-style tokenizer, as Llama-2 ships it: Sequence[Replace("▁", " "), ByteFallback,
 * Fuse, Strip(" ", 1, 0)], or Metaspace. Decoding works per token (id_bytes) and then on the whole text, so the
 * order must be: Replace/Metaspace, then ByteFallback, then Fuse, then Strip. */
typedef struct {
    const char *from[8], *to[8];
    int nrep;
    int byte_fallback, fused;
} sp_decoder;

static int parse_sp_decoder(sc_tokenizer *t, const cJSON *d, sp_decoder *dec) {
    const char *type = type_of(d);
    if (!type) return sc_fail("decoder: missing \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *it, *list = cJSON_GetObjectItemCaseSensitive(d, "decoders");
        if (!cJSON_IsArray(list) || !cJSON_GetArraySize(list)) return sc_fail("decoder Sequence: \"decoders\" must be a non-empty array");
        cJSON_ArrayForEach(it, list) if (parse_sp_decoder(t, it, dec)) return -1;
        return 0;
    }
    if (strcmp(type, "Replace") == 0 || strcmp(type, "Metaspace") == 0) {
        int meta = type[0] == 'M';
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(d, meta ? "replacement" : "pattern");
        const cJSON *str = meta ? pat : cJSON_GetObjectItemCaseSensitive(pat, "String");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(d, "content");
        if (!meta && cJSON_GetObjectItemCaseSensitive(pat, "Regex")) return sc_fail("decoder Replace: a Regex pattern is not supported (only {\"String\": ...})");
        if (!cJSON_IsString(str) || !str->valuestring[0] || strlen(str->valuestring) >= 8 || (!meta && !cJSON_IsString(content)))
            return sc_fail("decoder %s: needs a %s", type, meta ? "one-character \"replacement\"" : "\"pattern\": {\"String\": ...} and a string \"content\"");
        if (dec->byte_fallback || dec->fused || dec->nrep == 8 || (meta && (dec->nrep || t->meta_first[0])))
            return sc_fail("decoder %s: only supported first in the decoder Sequence (before ByteFallback, Fuse, Strip)", type);
        if (meta) {
            const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(d, "prepend_scheme");
            int aps = 1;
            if (get_bool(d, "add_prefix_space", 1, &aps)) return sc_fail_prefix("decoder Metaspace");
            int never = !aps || (cJSON_IsString(scheme) && strcmp(scheme->valuestring, "never") == 0);
            if (!never) strcpy(t->meta_first, str->valuestring);
        }
        dec->from[dec->nrep] = str->valuestring;
        dec->to[dec->nrep++] = meta ? " " : content->valuestring;
        return 0;
    }
    if (strcmp(type, "ByteFallback") == 0) {
        if (dec->fused) return sc_fail("decoder ByteFallback after Fuse is not supported");
        dec->byte_fallback = 1;
        return 0;
    }
    if (strcmp(type, "Fuse") == 0) {
        dec->fused = 1;
        return 0;
    }
    if (strcmp(type, "Strip") == 0) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(d, "content");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, "start"), *b = cJSON_GetObjectItemCaseSensitive(d, "stop");
        uint32_t cp;
        if (!cJSON_IsString(c) || !c->valuestring[0] || strlen(c->valuestring) >= 8 ||
            tok_utf8_decode((const uint8_t *)c->valuestring, strlen(c->valuestring), &cp) != (int)strlen(c->valuestring) ||
            !cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !(a->valuedouble >= 0 && a->valuedouble <= 64) ||
            !(b->valuedouble >= 0 && b->valuedouble <= 64))
            return sc_fail("decoder Strip: needs a one-character \"content\" and \"start\"/\"stop\" counts in [0, 64]");
        if (!dec->fused || t->strip_char[0]) return sc_fail("decoder Strip: only supported once, after Fuse");
        strcpy(t->strip_char, c->valuestring);
        t->strip_start = (int)a->valuedouble, t->strip_stop = (int)b->valuedouble;
        return 0;
    }
    return sc_fail("decoder type '%s' is not supported with a SentencePiece-style tokenizer (Replace, ByteFallback, "
                   "Fuse, Strip, Metaspace)", type);
}

static int parse_decoder(const cJSON *d) {
    const char *type = d && !cJSON_IsNull(d) ? type_of(d) : NULL;
    if (!type) return sc_fail("decoder: missing (a ByteLevel decoder is required)");
    if (strcmp(type, "ByteLevel") == 0) return 0;
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *it, *list = cJSON_GetObjectItemCaseSensitive(d, "decoders");
        if (!cJSON_IsArray(list) || !cJSON_GetArraySize(list)) return sc_fail("decoder Sequence: \"decoders\" must be a non-empty array");
        cJSON_ArrayForEach(it, list) if (parse_decoder(it)) return -1;
        return 0;
    }
    return sc_fail("decoder type '%s' is not supported with a ByteLevel pre-tokenizer (only ByteLevel)", type);
}

/* <0xNN> (any case of the hex digits, as HF's ByteFallback decoder reads them): the byte, else -1 */
static int byte_token(const char *s) {
    if (strlen(s) != 6 || strncmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* What decode writes per id under a SentencePiece-style decoder: the text with the Replace rules applied in
 * order, or the byte of a <0xNN> token when ByteFallback is on. */
static void sp_id_bytes(sc_tokenizer *t, const sp_decoder *dec) {
    for (int i = 0; i < t->vocab_size; i++) {
        if (!t->id_str[i]) continue;
        int b = dec->byte_fallback ? byte_token(t->id_str[i]) : -1;
        if (b >= 0) {
            t->id_bytes[i] = sc_malloc(1);
            t->id_bytes[i][0] = (uint8_t)b;
            t->id_nbytes[i] = 1;
            continue;
        }
        byte_buf cur = {0};
        tok_buf_add(&cur, t->id_str[i], strlen(t->id_str[i]));
        for (int r = 0; r < dec->nrep; r++) {
            byte_buf next = {0};
            size_t lf = strlen(dec->from[r]), k = 0;
            tok_buf_add(&next, NULL, 0);
            while (k < cur.len) {
                if (cur.len - k >= lf && memcmp(cur.buf + k, dec->from[r], lf) == 0) {
                    tok_buf_add(&next, dec->to[r], strlen(dec->to[r]));
                    k += lf;
                } else {
                    tok_buf_add(&next, cur.buf + k, 1);
                    k++;
                }
            }
            free(cur.buf);
            cur = next;
        }
        t->id_bytes[i] = (uint8_t *)cur.buf;
        t->id_nbytes[i] = (uint32_t)cur.len;
    }
}

/* Checks the model's options; returns the vocab object. */
static int parse_model_options(sc_tokenizer *t, const cJSON *model) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0))
        return sc_fail("model.dropout is set; BPE dropout is not supported");
    const char *names[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        v = cJSON_GetObjectItemCaseSensitive(model, names[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0]))
            return sc_fail("model.%s is set; it is not supported with BPE", names[i]);
    }
    if (get_bool(model, "byte_fallback", 0, &t->byte_fallback) || get_bool(model, "fuse_unk", 0, &t->fuse_unk) ||
        get_bool(model, "ignore_merges", 0, &t->ignore_merges))
        return sc_fail_prefix("model");
    if (t->byte_fallback && t->bytelevel)
        return sc_fail("model.byte_fallback is true with a ByteLevel pre-tokenizer (byte fallback is for "
                       "SentencePiece-style BPE)");
    return 0;
}

static int set_token(sc_tokenizer *t, int32_t id, const char *s) {
    if (t->id_str[id] && strcmp(t->id_str[id], s) != 0)
        return sc_fail("id %d is used by both '%s' and '%s'", id, t->id_str[id], s);
    free(t->id_str[id]);
    t->id_str[id] = xstrdup(s);
    return 0;
}

static void fnv(uint64_t *h, const void *p, size_t n) {
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) *h = (*h ^ s[i]) * 0x100000001B3ull;
}

static int build(sc_tokenizer *t, const cJSON *root) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return sc_fail("missing \"model\"");
    const char *type = type_of(model);
    /* HF reads an untyped model as the first variant that fits: BPE when it has merges, Unigram when its vocab
     * is a list of [piece, score], WordPiece with max_input_chars_per_word, else WordLevel */
    if (!type) {
        if (cJSON_GetObjectItemCaseSensitive(model, "merges")) type = "BPE";
        else if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(model, "vocab"))) type = "Unigram";
        else if (cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word")) type = "WordPiece";
        else if (cJSON_GetObjectItemCaseSensitive(model, "vocab")) type = "WordLevel";
    }
    if (!type) return sc_fail("model: missing \"type\"");
    if (strcmp(type, "BPE") != 0) return sc_fail("model type '%s' is not supported (only BPE)", type);
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    t->bytelevel = has_bytelevel(pre);
    if (parse_model_options(t, model)) return -1;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) return sc_fail("model.vocab: missing or not an object");
    if (!cJSON_IsArray(merges)) return sc_fail("model.merges: missing or not an array");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) return sc_fail("added_tokens: not an array");

    /* ids */
    int64_t max_id = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0 && it->valuedouble < TOK_MAX_ID) ||
            it->valuedouble != (double)(int64_t)it->valuedouble)
            return sc_fail("model.vocab['%s']: id must be an integer in [0, %d)", it->string, TOK_MAX_ID);
        if ((int64_t)it->valuedouble > max_id) max_id = (int64_t)it->valuedouble;
    }
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || !(id->valuedouble >= 0 && id->valuedouble < TOK_MAX_ID) ||
            id->valuedouble != (double)(int64_t)id->valuedouble || !cJSON_IsString(content) || !content->valuestring[0])
            return sc_fail("added_tokens: each entry needs an integer \"id\" in [0, %d) and a non-empty \"content\"",
                           TOK_MAX_ID);
        if ((int64_t)id->valuedouble > max_id) max_id = (int64_t)id->valuedouble;
    }
    if (max_id < 0) return sc_fail("model.vocab is empty");
    t->vocab_size = (int)max_id + 1;
    t->id_str = sc_calloc((size_t)t->vocab_size, sizeof *t->id_str);
    int nvocab = cJSON_GetArraySize(vocab);
    tok_strmap model_vocab;
    strmap_init(&model_vocab, (uint32_t)nvocab);
    strmap_init(&t->str_to_id, (uint32_t)nvocab + 64);
    strmap_init(&t->bytes_to_id, (uint32_t)nvocab);
    size_t raw_cap = 4096;
    uint8_t *raw = sc_malloc(raw_cap);
    int rc = 0;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id = (int32_t)it->valuedouble;
        size_t n = strlen(it->string);
        if ((rc = set_token(t, id, it->string))) break;
        strmap_put(&model_vocab, it->string, n, id);
        strmap_put(&t->str_to_id, it->string, n, id);
        if (n > raw_cap) {
            free(raw);
            raw = sc_malloc(raw_cap = n);
        }
        if (!t->bytelevel) { /* SentencePiece style: the token's text is what it matches */
            strmap_put(&t->bytes_to_id, it->string, n, id);
            continue;
        }
        long nb = bytelevel_to_bytes(it->string, n, raw);
        if (nb > 0) strmap_put(&t->bytes_to_id, raw, (size_t)nb, id);
    }
    for (int b = 0; b < 256 && !rc; b++) {
        uint8_t c = (uint8_t)b;
        t->byte_id[b] = strmap_get(&t->bytes_to_id, &c, 1);
        char name[8]; /* HF looks the fallback up as format!("<{b:#04X}>"): "<0x0A>" */
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->fallback_id[b] = t->byte_fallback ? strmap_get(&model_vocab, name, 6) : -1;
    }

    /* merges: "a b" strings (lines starting with #version skipped, as HF does) or ["a", "b"] pairs */
    int nm = rc ? 0 : cJSON_GetArraySize(merges);
    pairmap_init(&t->merges, (uint64_t)nm);
    uint32_t rank = 0;
    char *cat = NULL;
    size_t cat_cap = 0;
    int index = -1;
    cJSON_ArrayForEach(it, merges) {
        if (rc) break;
        index++;
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(it)) {
            const char *s = it->valuestring, *sp = strchr(s, ' ');
            if (strncmp(s, "#version", 8) == 0) continue;
            if (!sp || strchr(sp + 1, ' ')) {
                rc = sc_fail("model.merges[%d] '%s': expected two tokens separated by one space", index, s);
                break;
            }
            a = s, la = (size_t)(sp - s), b = sp + 1, lb = strlen(b);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) &&
                   cJSON_IsString(it->child->next)) {
            a = it->child->valuestring, la = strlen(a), b = it->child->next->valuestring, lb = strlen(b);
        } else {
            rc = sc_fail("model.merges[%d]: expected \"a b\" or [\"a\", \"b\"]", index);
            break;
        }
        if (la + lb + 1 > cat_cap) {
            free(cat);
            cat = sc_malloc(cat_cap = (la + lb + 1) * 2);
        }
        memcpy(cat, a, la);
        memcpy(cat + la, b, lb);
        cat[la + lb] = 0;
        int32_t ia = strmap_get(&model_vocab, a, la), ib = strmap_get(&model_vocab, b, lb);
        int32_t in = strmap_get(&model_vocab, cat, la + lb);
        if (ia < 0 || ib < 0 || in < 0) {
            const char *missing = ia < 0 ? a : ib < 0 ? b : cat;
            int nmiss = (int)(ia < 0 ? la : ib < 0 ? lb : la + lb);
            rc = sc_fail("model.merges[%d] '%.*s %.*s': token '%.*s' is not in the vocabulary", index, (int)la, a,
                         (int)lb, b, nmiss, missing);
            break;
        }
        pairmap_put(&t->merges, ia, ib, rank++, in);
    }
    free(cat);
    t->nmerges = rank;
    if (!rc) {
        const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
        t->unk_id = -1;
        if (cJSON_IsString(unk)) {
            t->unk_id = strmap_get(&model_vocab, unk->valuestring, strlen(unk->valuestring));
            if (t->unk_id < 0) rc = sc_fail("model.unk_token '%s' is not in the vocabulary", unk->valuestring);
        }
    }
    strmap_free(&model_vocab);

    /* added tokens */
    if (!rc && added) {
        t->nadded = cJSON_GetArraySize(added);
        t->added = sc_calloc((size_t)t->nadded + 1, sizeof *t->added);
        int k = 0;
        cJSON_ArrayForEach(it, added) {
            added_token *a = &t->added[k++];
            const char *content = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
            a->id = (int32_t)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
            a->content = xstrdup(content);
            a->len = strlen(content);
            if (get_bool(it, "special", 0, &a->special) || get_bool(it, "single_word", 0, &a->single_word) ||
                get_bool(it, "lstrip", 0, &a->lstrip) || get_bool(it, "rstrip", 0, &a->rstrip) ||
                get_bool(it, "normalized", !a->special, &a->normalized)) {
                rc = sc_fail_prefix("added_tokens '%s'", content);
                break;
            }
            free(t->id_str[a->id]); /* an added token may re-use a vocabulary id: its text wins, as in HF */
            t->id_str[a->id] = xstrdup(content);
            strmap_put(&t->str_to_id, content, a->len, a->id);
        }
        /* bucket each pass's tokens by first byte (counting sort, stable) */
        for (int pass = 0; pass < 2 && !rc; pass++) {
            t->by_first[pass] = sc_malloc(((size_t)t->nadded + 1) * sizeof(int));
            int count[257] = {0};
            for (int i = 0; i < t->nadded; i++)
                if (t->added[i].normalized == pass) count[(uint8_t)t->added[i].content[0] + 1]++;
            for (int b = 0; b < 256; b++) count[b + 1] += count[b];
            memcpy(t->bucket[pass], count, sizeof count);
            for (int i = 0; i < t->nadded; i++)
                if (t->added[i].normalized == pass) t->by_first[pass][count[(uint8_t)t->added[i].content[0]]++] = i;
        }
    }

    /* what decode writes per id: HF's ByteLevel decoder maps a token's characters back to bytes when they are
     * all byte-level characters, and writes the token's own text otherwise */
    if (!rc) {
        t->id_bytes = sc_calloc((size_t)t->vocab_size, sizeof *t->id_bytes);
        t->id_nbytes = sc_calloc((size_t)t->vocab_size, sizeof *t->id_nbytes);
        for (int i = 0; i < t->vocab_size && t->bytelevel; i++) {
            if (!t->id_str[i]) continue;
            size_t n = strlen(t->id_str[i]);
            t->id_bytes[i] = sc_malloc(n + 1);
            long nb = bytelevel_to_bytes(t->id_str[i], n, t->id_bytes[i]);
            if (nb < 0) {
                memcpy(t->id_bytes[i], t->id_str[i], n);
                nb = (long)n;
            }
            t->id_nbytes[i] = (uint32_t)nb;
        }
    }
    free(raw);
    if (rc) return rc;

    if (tokenizer_parse_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"))) return -1;
    if (t->bytelevel || (pre && !cJSON_IsNull(pre))) {
        if (!pre || cJSON_IsNull(pre)) return sc_fail("pre_tokenizer: missing");
        if (parse_pretok(t, pre)) return -1;
    }
    if (t->nsteps > PRETOK_MAX_STEPS) return sc_fail("pre_tokenizer: more than %d steps", PRETOK_MAX_STEPS);
    if (t->bytelevel) {
        int nbl = 0;
        for (int i = 0; i < t->nsteps; i++) nbl += t->steps[i].kind == PRE_BYTELEVEL;
        if (nbl != 1 || t->steps[t->nsteps - 1].kind != PRE_BYTELEVEL)
            return sc_fail("pre_tokenizer: exactly one ByteLevel is required and it must come last");
        if (parse_decoder(cJSON_GetObjectItemCaseSensitive(root, "decoder"))) return -1;
    } else {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "decoder");
        if (!d || cJSON_IsNull(d)) return sc_fail("decoder: missing (a SentencePiece-style tokenizer needs Replace/ByteFallback/Fuse/Strip or Metaspace)");
        sp_decoder dec = {0};
        if (parse_sp_decoder(t, d, &dec)) return -1;
        sp_id_bytes(t, &dec);
    }

    if (tokenizer_parse_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"))) return -1;

    /* the hash: every id's text and kind, the merges as id pairs in rank order, the pipeline */
    uint64_t h = 0xCBF29CE484222325ull;
    for (int i = 0; i < t->vocab_size; i++) {
        uint8_t kind = t->id_str[i] ? 1 : 0;
        for (int k = 0; k < t->nadded; k++)
            if (t->added[k].id == i) kind = (uint8_t)(2 + t->added[k].special);
        fnv(&h, &kind, 1);
        if (t->id_str[i]) fnv(&h, t->id_str[i], strlen(t->id_str[i]) + 1);
    }
    uint64_t nslots = t->merges.mask + 1;
    uint64_t *by_rank = sc_calloc(t->nmerges + 1, sizeof *by_rank);
    for (uint64_t i = 0; i < nslots; i++)
        if (t->merges.keys[i]) by_rank[t->merges.rank[i]] = t->merges.keys[i];
    for (uint32_t r = 0; r < t->nmerges; r++) fnv(&h, &by_rank[r], 8); /* 0 for a rank a duplicate overwrote */
    free(by_rank);
    for (int i = 0; i < t->nsteps; i++) fnv(&h, t->steps[i].desc, strlen(t->steps[i].desc) + 1);
    uint8_t opts[3] = {(uint8_t)t->ignore_merges, (uint8_t)t->fuse_unk, (uint8_t)(t->unk_id >= 0)};
    fnv(&h, opts, 3);
    /* what byte-level tokenizers did not have adds to the hash only when present, so theirs stay as they were */
    if (!t->bytelevel) {
        uint8_t sp[4] = {1, (uint8_t)t->byte_fallback, (uint8_t)t->strip_start, (uint8_t)t->strip_stop};
        fnv(&h, sp, 4);
        fnv(&h, t->strip_char, strlen(t->strip_char) + 1);
        fnv(&h, t->meta_first, strlen(t->meta_first) + 1);
    }
    for (int i = 0; i < t->nnorms; i++) {
        const norm_step *n = &t->norms[i];
        uint8_t k[3] = {(uint8_t)(0x80 | n->kind), (uint8_t)n->left, (uint8_t)n->right};
        fnv(&h, k, 3);
        if (n->a) fnv(&h, n->a, n->la + 1);
        if (n->b) fnv(&h, n->b, n->lb + 1);
    }
    /* what the post-processor adds changes the ids of every document tokenize writes: part of the hash when it
     * adds anything, so the hashes of tokenizers that add nothing stay as they were */
    if (t->npost_pre || t->npost_suf) {
        int32_t counts[2] = {t->npost_pre, t->npost_suf};
        fnv(&h, counts, sizeof counts);
        fnv(&h, t->post_pre, (size_t)t->npost_pre * sizeof *t->post_pre);
        fnv(&h, t->post_suf, (size_t)t->npost_suf * sizeof *t->post_suf);
    }
    t->hash = h;
    return 0;
}

int tokenizer_load(sc_tokenizer **out, const char *path) {
    *out = NULL;
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len)) return -1;
    int rc = tokenizer_load_json(out, text, len, path);
    free(text);
    return rc;
}

int tokenizer_load_json(sc_tokenizer **out, const char *text, size_t len, const char *path) {
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        size_t at = e && e >= text && e <= text + len ? (size_t)(e - text) : 0;
        return sc_fail("%s: not valid JSON (error near byte %zu)", path, at);
    }
    sc_tokenizer *t = sc_calloc(1, sizeof *t);
    t->unk_id = -1;
    int rc = cJSON_IsObject(root) ? build(t, root) : sc_fail("not a JSON object");
    cJSON_Delete(root);
    if (rc) {
        tokenizer_free(t);
        return sc_fail_prefix("%s", path);
    }
    t->serial = tokenizer_next_serial();
    *out = t;
    return 0;
}
