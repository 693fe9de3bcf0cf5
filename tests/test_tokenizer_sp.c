/* test_tokenizer_sp.c — SentencePiece-style BPE and the normalizers on hand-made tokenizer.json files whose ids
 * are worked out by hand from HF's rules: Llama-2's published form (Prepend/Replace normalizer, byte_fallback,
 * Replace/ByteFallback/Fuse/Strip decoder), the older Metaspace pre-tokenizer in each prepend scheme, fuse_unk,
 * merges as strings or pairs, NFC/NFD/NFKC/Strip, bytes that are not UTF-8, the _cont variants FIM and
 * generation use, and the refusals (Unigram, WordPiece, ...: one line naming the file). Agreement with HF itself
 * on published tokenizer.json files is tests/tokenizer_hf/published.js. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"
#include "host/error.h"
#include "data/tokenizer.h"

/* ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then these */
static const char *const EXTRA[] = {"▁", "a", "b", "c", "▁a", "ab", "▁ab", "é", "fi", "▁▁"};
enum { SP = 259, A, B, C, SP_A, AB, SP_AB, E_ACUTE, FI, SP_SP };
#define BYTE(b) (3 + (b))

static const char *LLAMA_NORM = "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"▁\"},"
                                "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"▁\"}]}";
static const char *LLAMA_DEC = "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"▁\"},"
                               "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                               "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}";

/* A SentencePiece-style tokenizer.json; normalizer/pre/decoder are JSON text ("null" for none). pairs: merges
 * as ["a","b"] instead of "a b". */
static char *sp_json(const char *normalizer, const char *pre, const char *decoder, int byte_fallback, int fuse_unk,
                     int pairs, const char *model_type) {
    cJSON *root = cJSON_CreateObject();
    cJSON *add = cJSON_AddArrayToObject(root, "added_tokens");
    const char *specials[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", i);
        cJSON_AddStringToObject(t, "content", specials[i]);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddItemToArray(add, t);
    }
    cJSON_AddItemToObject(root, "normalizer", cJSON_Parse(normalizer));
    cJSON_AddItemToObject(root, "pre_tokenizer", cJSON_Parse(pre));
    cJSON_AddItemToObject(root, "decoder", cJSON_Parse(decoder));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", model_type);
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON_AddBoolToObject(model, "byte_fallback", byte_fallback);
    cJSON_AddBoolToObject(model, "fuse_unk", fuse_unk);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int i = 0; i < 3; i++) cJSON_AddNumberToObject(vocab, specials[i], i);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        cJSON_AddNumberToObject(vocab, name, BYTE(b));
    }
    for (int i = 0; i < (int)(sizeof EXTRA / sizeof EXTRA[0]); i++) cJSON_AddNumberToObject(vocab, EXTRA[i], SP + i);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    const char *m[][2] = {{"▁", "a"}, {"a", "b"}, {"▁a", "b"}, {"▁", "▁"}};
    for (int i = 0; i < 4; i++) {
        if (pairs) {
            cJSON_AddItemToArray(merges, cJSON_CreateStringArray(m[i], 2));
        } else {
            char line[32];
            snprintf(line, sizeof line, "%s %s", m[i][0], m[i][1]);
            cJSON_AddItemToArray(merges, cJSON_CreateString(line));
        }
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static sc_tokenizer *load(char *json) {
    sc_tokenizer *t = NULL;
    if (tokenizer_load_json(&t, json, strlen(json), "sp.json")) fprintf(stderr, "load: %s\n", sc_error());
    free(json);
    return t;
}

/* encode (or encode_cont) of text must give want[0..nw) */
static void check_ids(const char *label, const sc_tokenizer *t, int cont, const char *text, const int32_t *want, int nw) {
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = cont ? tokenizer_encode_cont(t, text, strlen(text), &ids, &n) : tokenizer_encode(t, text, strlen(text), &ids, &n);
    int same = rc == 0 && (int)n == nw;
    for (int i = 0; same && i < nw; i++) same = ids[i] == want[i];
    char got[512] = "";
    for (size_t i = 0; i < n && strlen(got) < 480; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", ids[i]);
    CHECKF(same, "%s: '%s' encoded to [%s]", label, text, got);
    free(ids);
}

static void check_decode(const char *label, const sc_tokenizer *t, int cont, const int32_t *ids, int n, const char *want,
                         size_t want_len) {
    char *out = NULL;
    size_t len = 0;
    int rc = cont ? tokenizer_decode_cont(t, ids, (size_t)n, &out, &len) : tokenizer_decode(t, ids, (size_t)n, &out, &len);
    CHECKF(rc == 0 && len == want_len && memcmp(out, want, len) == 0, "%s: decoded to '%s'", label, out ? out : "(error)");
    free(out);
}

#define IDS(...) (int32_t[]){__VA_ARGS__}, (int)(sizeof((int32_t[]){__VA_ARGS__}) / sizeof(int32_t))

static void test_llama_form(void) {
    for (int pairs = 0; pairs < 2; pairs++) {
        sc_tokenizer *t = load(sp_json(LLAMA_NORM, "null", LLAMA_DEC, 1, 1, pairs, "BPE"));
        if (!t) return;
        check_ids("llama ab", t, 0, "ab", IDS(SP_AB));
        check_ids("llama ' ab'", t, 0, " ab", IDS(SP, SP_AB));              /* ▁▁ab: ▁a (rank 0) beats ▁▁ */
        check_ids("llama byte fallback", t, 0, "x\xc3\xa9", IDS(SP, BYTE('x'), E_ACUTE));
        check_ids("llama 2-byte fallback", t, 0, "\xc4\x89", IDS(SP, BYTE(0xC4), BYTE(0x89)));
        check_ids("llama specials", t, 0, "ab<s>ab", IDS(SP_AB, 1, SP_AB)); /* Prepend after each special */
        check_ids("llama not UTF-8", t, 0, "a\xff" "b", IDS(SP_A, BYTE(0xFF), B));
        check_ids("llama empty", t, 0, "", (int32_t[]){0}, 0);
        check_ids("llama cont", t, 1, "ab", IDS(AB));                       /* no prefix: CodeLlama's suffix */
        check_ids("llama cont space", t, 1, " c", IDS(SP, C));
        check_ids("llama cont after special", t, 1, "<s>ab", IDS(1, SP_AB));
        /* decode: ▁ -> space, bytes back, one leading space stripped off the whole text */
        check_decode("decode", t, 0, IDS(SP_AB, 1, SP_AB), "ab<s> ab", 8);
        check_decode("decode spaces", t, 0, IDS(SP, SP_AB), " ab", 3);
        check_decode("decode bytes", t, 0, IDS(SP_A, BYTE(0xFF), B), "a\xff" "b", 3);
        check_decode("decode_cont", t, 1, IDS(SP, SP_AB), "  ab", 4);
        tokenizer_free(t);
    }
    /* no byte_fallback: unknown characters are <unk>, fused into one or not */
    sc_tokenizer *t = load(sp_json(LLAMA_NORM, "null", LLAMA_DEC, 0, 1, 0, "BPE"));
    check_ids("fuse_unk", t, 0, "xyz a", IDS(SP, 0, SP_A));
    tokenizer_free(t);
    t = load(sp_json(LLAMA_NORM, "null", LLAMA_DEC, 0, 0, 0, "BPE"));
    check_ids("no fuse_unk", t, 0, "xyz a", IDS(SP, 0, 0, 0, SP_A));
    tokenizer_free(t);
}

static void test_metaspace(void) {
    char pre[256];
    const char *dec = "{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"prepend_scheme\":\"always\",\"split\":true}";
    snprintf(pre, sizeof pre, "{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"prepend_scheme\":\"always\",\"split\":true}");
    sc_tokenizer *t = load(sp_json("null", pre, dec, 1, 1, 0, "BPE"));
    check_ids("always", t, 0, "ab", IDS(SP_AB));
    check_ids("always ' ab ab'", t, 0, " ab ab", IDS(SP_AB, SP_AB)); /* starts with ▁ already: nothing prepended */
    check_ids("always specials", t, 0, "ab<s>ab", IDS(SP_AB, 1, SP_AB));
    check_ids("always split", t, 0, "a  b", IDS(SP_A, SP, SP, B));
    check_ids("always cont", t, 1, "ab", IDS(AB));
    /* Metaspace decoder: the first token loses its ▁, the others turn it into a space */
    check_decode("metaspace decode", t, 0, IDS(SP_AB, SP_AB), "ab ab", 5);
    check_decode("metaspace decode_cont", t, 1, IDS(SP_AB, SP_AB), " ab ab", 6);
    tokenizer_free(t);
    /* the older form: add_prefix_space true, no split field (defaults to true) */
    t = load(sp_json("null", "{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"add_prefix_space\":true}",
                     "{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"add_prefix_space\":true}", 1, 1, 0, "BPE"));
    check_ids("old form", t, 0, "a  b", IDS(SP_A, SP, SP, B));
    tokenizer_free(t);
    /* Mistral's later form: prepend only at the start of the input, no split (one word: ▁▁ merges) */
    t = load(sp_json("null", "{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"prepend_scheme\":\"first\",\"split\":false}",
                     LLAMA_DEC, 1, 1, 0, "BPE"));
    check_ids("first", t, 0, "ab<s>ab", IDS(SP_AB, 1, AB));
    check_ids("first no split", t, 0, "a  b", IDS(SP_A, SP_SP, B));
    tokenizer_free(t);
    t = load(sp_json("null", "{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"prepend_scheme\":\"never\"}", LLAMA_DEC, 1,
                     1, 0, "BPE"));
    check_ids("never", t, 0, "ab", IDS(AB));
    tokenizer_free(t);
}

static void test_normalizers(void) {
    char norm[512];
    const char *forms[] = {"NFC", "NFD", "NFKC"};
    for (int f = 0; f < 3; f++) {
        snprintf(norm, sizeof norm, "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"%s\"},%s]}", forms[f],
                 LLAMA_NORM);
        sc_tokenizer *t = load(sp_json(norm, "null", LLAMA_DEC, 1, 1, 0, "BPE"));
        if (!t) continue;
        if (f == 1) { /* NFD: é -> e + U+0301, each by byte fallback */
            check_ids("NFD", t, 0, "\xc3\xa9", IDS(SP, BYTE('e'), BYTE(0xCC), BYTE(0x81)));
        } else {
            check_ids(forms[f], t, 0, "e\xcc\x81", IDS(SP, E_ACUTE));
            check_ids(forms[f], t, 0, "\xc3\xa9", IDS(SP, E_ACUTE));
        }
        /* NFKC folds the ligature fi; NFC leaves it (3 fallback bytes) */
        if (f == 2) check_ids("NFKC ligature", t, 0, "\xef\xac\x81", IDS(SP, BYTE('f'), BYTE('i'))); /* no f+i merge */
        else if (f == 0) check_ids("NFC ligature", t, 0, "\xef\xac\x81", IDS(SP, BYTE(0xEF), BYTE(0xAC), BYTE(0x81)));
        /* bytes that are not UTF-8 pass through untouched, around a normalized character */
        check_ids("normalize around bad bytes", t, 0, "\xff" "a\xfe", IDS(SP, BYTE(0xFF), A, BYTE(0xFE)));
        tokenizer_free(t);
    }
    /* without a normalizer the decomposed form stays decomposed */
    sc_tokenizer *t = load(sp_json(LLAMA_NORM, "null", LLAMA_DEC, 1, 1, 0, "BPE"));
    check_ids("no NFC", t, 0, "e\xcc\x81", IDS(SP, BYTE('e'), BYTE(0xCC), BYTE(0x81)));
    tokenizer_free(t);
    /* Strip before Prepend: surrounding whitespace goes, an all-space stretch becomes empty (no tokens) */
    snprintf(norm, sizeof norm, "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Strip\",\"strip_left\":true,"
             "\"strip_right\":true},%s]}", LLAMA_NORM);
    t = load(sp_json(norm, "null", LLAMA_DEC, 1, 1, 0, "BPE"));
    check_ids("Strip", t, 0, " \t ab\n ", IDS(SP_AB));
    check_ids("Strip empty", t, 0, " <s> ", IDS(1));
    tokenizer_free(t);
}

static void test_refusals(void) {
    sc_tokenizer *t = NULL;
    char *s;
#define REFUSED(json, needle)                                                                                      \
    do {                                                                                                           \
        s = json;                                                                                                  \
        CHECK_FAILS_WITH(tokenizer_load_json(&t, s, strlen(s), "tok.json"), needle);                               \
        CHECK(t == NULL);                                                                                          \
        free(s);                                                                                                   \
    } while (0)
    REFUSED(sp_json(LLAMA_NORM, "null", LLAMA_DEC, 1, 1, 0, "Unigram"), "tok.json: model type 'Unigram' is not supported");
    REFUSED(sp_json(LLAMA_NORM, "null", LLAMA_DEC, 1, 1, 0, "WordPiece"), "tok.json: model type 'WordPiece' is not supported");
    /* untyped models are named the way HF reads them */
    const char *uni = "{\"model\":{\"vocab\":[[\"a\",0.0]],\"unk_id\":0}}";
    CHECK_FAILS_WITH(tokenizer_load_json(&t, uni, strlen(uni), "u.json"), "u.json: model type 'Unigram'");
    const char *wp = "{\"model\":{\"vocab\":{\"a\":0},\"max_input_chars_per_word\":100}}";
    CHECK_FAILS_WITH(tokenizer_load_json(&t, wp, strlen(wp), "w.json"), "w.json: model type 'WordPiece'");
    REFUSED(sp_json("{\"type\":\"Lowercase\"}", "null", LLAMA_DEC, 1, 1, 0, "BPE"), "normalizer type 'Lowercase' is not supported");
    REFUSED(sp_json("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},\"content\":\"▁\"}", "null", LLAMA_DEC, 1, 1, 0, "BPE"),
            "normalizer Replace: a Regex pattern is not supported");
    REFUSED(sp_json(LLAMA_NORM, "null", "{\"type\":\"ByteLevel\"}", 1, 1, 0, "BPE"),
            "decoder type 'ByteLevel' is not supported with a SentencePiece-style tokenizer");
    REFUSED(sp_json(LLAMA_NORM, "null", "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Strip\",\"content\":\" \","
                    "\"start\":1,\"stop\":0},{\"type\":\"Fuse\"}]}", 1, 1, 0, "BPE"), "decoder Strip: only supported once, after Fuse");
    REFUSED(sp_json(LLAMA_NORM, "null", "null", 1, 1, 0, "BPE"), "decoder: missing");
    REFUSED(sp_json("null", "{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"prepend_scheme\":\"sometimes\"}", LLAMA_DEC,
                    1, 1, 0, "BPE"), "prepend_scheme must be");
    /* byte fallback belongs to SentencePiece style, not to byte-level BPE */
    REFUSED(sp_json("null", "{\"type\":\"ByteLevel\"}", "{\"type\":\"ByteLevel\"}", 1, 1, 0, "BPE"),
            "model.byte_fallback is true with a ByteLevel pre-tokenizer");
#undef REFUSED
}

static void test_hash(void) {
    sc_tokenizer *a = load(sp_json(LLAMA_NORM, "null", LLAMA_DEC, 1, 1, 0, "BPE"));
    sc_tokenizer *b = load(sp_json(LLAMA_NORM, "null", LLAMA_DEC, 1, 1, 1, "BPE")); /* pairs: same tokenizer */
    sc_tokenizer *c = load(sp_json("null", "{\"type\":\"Metaspace\",\"replacement\":\"▁\"}", LLAMA_DEC, 1, 1, 0, "BPE"));
    sc_tokenizer *d = load(sp_json("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Prepend\","
                                   "\"prepend\":\"▁\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"▁\"}]}",
                                   "null", LLAMA_DEC, 1, 1, 0, "BPE"));
    if (a && b && c && d) {
        CHECK(tokenizer_hash(a) == tokenizer_hash(b));
        CHECK(tokenizer_hash(a) != tokenizer_hash(c));
        CHECK(tokenizer_hash(a) != tokenizer_hash(d));
        CHECK(tokenizer_token_id(a, "<0x0A>") == BYTE(10) && tokenizer_vocab_size(a) == SP_SP + 1);
    }
    tokenizer_free(a), tokenizer_free(b), tokenizer_free(c), tokenizer_free(d);
}

/* the Llama form with post_processor set to the JSON text post */
static char *with_post(const char *post) {
    char *base = sp_json(LLAMA_NORM, "null", LLAMA_DEC, 1, 1, 0, "BPE");
    cJSON *root = cJSON_Parse(base);
    free(base);
    cJSON_AddItemToObject(root, "post_processor", cJSON_Parse(post));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* encode_special of text must give want[0..nw) */
static void check_special(const char *label, const sc_tokenizer *t, const char *text, const int32_t *want, int nw) {
    int32_t *ids = NULL;
    size_t n = 0;
    int same = tokenizer_encode_special(t, text, strlen(text), &ids, &n) == 0 && (int)n == nw;
    for (int i = 0; same && i < nw; i++) same = ids[i] == want[i];
    CHECKF(same, "%s: '%s' with special tokens: %zu ids", label, text, n);
    free(ids);
}

#define TEMPLATE(single, specials) "{\"type\":\"TemplateProcessing\",\"single\":[" single "],\"pair\":[],\"special_tokens\":{" specials "}}"
#define SPECIAL(name) "{\"SpecialToken\":{\"id\":\"" name "\",\"type_id\":0}}"
#define SEQ_A "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}"
#define IDS_OF(name, ids) "\"" name "\":{\"id\":\"" name "\",\"ids\":[" ids "],\"tokens\":[\"" name "\"]}"

/* the post_processor (HF add_special_tokens=True): Llama-2's <s> $A, Llama-3.x's Sequence[ByteLevel, Template],
 * RoBERTa/BERT cls $A sep, ByteLevel/null adding nothing, and the refusals */
static void test_post_processor(void) {
    sc_tokenizer *t = load(with_post(TEMPLATE(SPECIAL("<s>") "," SEQ_A, IDS_OF("<s>", "1"))));
    if (t) {
        check_special("llama <s> $A", t, "ab", IDS(1, SP_AB));
        check_ids("llama plain encode adds nothing", t, 0, "ab", IDS(SP_AB));
        CHECK(tokenizer_bos_id(t) == 1);
        const int32_t *p;
        CHECK(tokenizer_special_prefix(t, &p) == 1 && p[0] == 1 && tokenizer_special_suffix(t, &p) == 0);
    }
    sc_tokenizer *none = load(with_post("null"));
    if (t && none) CHECK(tokenizer_hash(t) != tokenizer_hash(none)); /* shards with BOS are not shards without */
    tokenizer_free(t);
    if (none) {
        check_special("null", none, "ab", IDS(SP_AB));
        CHECK(tokenizer_bos_id(none) == -1);
    }
    t = load(with_post("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}"));
    if (t) {
        check_special("ByteLevel (Qwen2)", t, "ab", IDS(SP_AB));
        CHECK(tokenizer_bos_id(t) == -1 && tokenizer_hash(t) == tokenizer_hash(none)); /* adds nothing: same hash */
    }
    tokenizer_free(t), tokenizer_free(none);
    /* Llama-3.x: Sequence[ByteLevel, TemplateProcessing]; a template after $A appends (some fine-tunes' EOS) */
    t = load(with_post("{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\"}," TEMPLATE(SPECIAL("<s>") "," SEQ_A "," SPECIAL("</s>"), IDS_OF("<s>", "1") "," IDS_OF("</s>", "2")) "]}"));
    if (t) {
        check_special("Sequence[ByteLevel, <s> $A </s>]", t, "ab", IDS(1, SP_AB, 2));
        CHECK(tokenizer_bos_id(t) == 1);
    }
    tokenizer_free(t);
    /* two tokens in front: no single BOS */
    t = load(with_post(TEMPLATE(SPECIAL("<s>") "," SPECIAL("</s>") "," SEQ_A, IDS_OF("<s>", "1") "," IDS_OF("</s>", "2"))));
    if (t) {
        check_special("<s> </s> $A", t, "ab", IDS(1, 2, SP_AB));
        CHECK(tokenizer_bos_id(t) == -1);
    }
    tokenizer_free(t);
    t = load(with_post("{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",2],\"cls\":[\"<s>\",1],\"trim_offsets\":true,"
                       "\"add_prefix_space\":false}"));
    if (t) check_special("RobertaProcessing", t, "ab", IDS(1, SP_AB, 2));
    tokenizer_free(t);
    t = load(with_post("{\"type\":\"BertProcessing\",\"sep\":[\"</s>\",2],\"cls\":[\"<unk>\",0]}"));
    if (t) check_special("BertProcessing", t, "a", IDS(0, SP_A, 2));
    tokenizer_free(t);
    /* the ids come from special_tokens, not from the vocabulary (HF's rule): a template may name several */
    t = load(with_post(TEMPLATE(SPECIAL("X") "," SEQ_A, IDS_OF("X", "1, 2"))));
    if (t) check_special("special_tokens ids", t, "ab", IDS(1, 2, SP_AB));
    tokenizer_free(t);
#define REFUSED(post, needle)                                                                                      \
    do {                                                                                                           \
        char *s = with_post(post);                                                                                 \
        sc_tokenizer *r = NULL;                                                                                    \
        CHECK_FAILS_WITH(tokenizer_load_json(&r, s, strlen(s), "tok.json"), needle);                               \
        CHECK(r == NULL);                                                                                          \
        free(s);                                                                                                   \
    } while (0)
    REFUSED("{\"type\":\"Whatever\"}", "tok.json: post_processor type 'Whatever' is not supported");
    /* HF does not nest two adding processors (tokenizer_hf_published measured it): refused, not guessed */
    REFUSED("{\"type\":\"Sequence\",\"processors\":[" TEMPLATE(SPECIAL("<s>") "," SEQ_A, IDS_OF("<s>", "1")) ","
            TEMPLATE(SPECIAL("</s>") "," SEQ_A, IDS_OF("</s>", "2")) "]}", "more than one processor adds tokens");
    REFUSED(TEMPLATE(SPECIAL("<s>") "," SEQ_A, ""), "special token '<s>' has no ids in \"special_tokens\"");
    REFUSED(TEMPLATE(SPECIAL("<s>"), IDS_OF("<s>", "1")), "\"single\" has no $A");
    REFUSED(TEMPLATE(SEQ_A ",{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}", ""), "must hold the sequence $A once");
    REFUSED(TEMPLATE(SPECIAL("<s>") "," SEQ_A, IDS_OF("<s>", "99999")), "post_processor <s>: id 99999 is not in the vocabulary");
    REFUSED("{\"type\":\"RobertaProcessing\",\"sep\":\"</s>\"}", "post_processor RobertaProcessing: \"cls\" and \"sep\" must be [token, id]");
#undef REFUSED
}

int main(void) {
    test_post_processor();
    test_llama_form();
    test_metaspace();
    test_normalizers();
    test_refusals();
    test_hash();
    return check_result("test_tokenizer_sp");
}
