/* test_fim_format.c — FIM prompts per model family, token for token (issue 17): tokenizers carrying each family's
 * added tokens in their published order (StarCoder-style, Qwen2.5-Coder, DeepSeek-Coder, CodeLlama) on a byte
 * vocabulary (ids 0-255 are the bytes, so "ab" encodes to 97 98), the documented layout of each, --fim-format
 * overrides, the family's end tokens, and the errors (a family the tokenizer lacks, an unknown name). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"
#include "host/error.h"
#include "infer/fim_format.h"
#include "infer/generate.h"
#include "tests/check.h"

/* a byte-level tokenizer.json: the 256 bytes, no merges, then the added tokens from id 256 on; bos >= 0: a
 * post_processor TemplateProcessing "added[bos] $A" as DeepSeek-Coder's and Llama's (ids from special_tokens) */
static sc_tokenizer *byte_tokenizer_bos(const char *const *added, int nadded, int bos) {
    cJSON *root = cJSON_CreateObject();
    if (bos >= 0) {
        char json[512];
        snprintf(json, sizeof json, "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"%s\","
                 "\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"special_tokens\":{\"%s\":"
                 "{\"id\":\"%s\",\"ids\":[%d],\"tokens\":[\"%s\"]}}}", added[bos], added[bos], added[bos], 256 + bos, added[bos]);
        cJSON_AddItemToObject(root, "post_processor", cJSON_Parse(json));
    }
    cJSON *add = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer",
                          cJSON_Parse("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}"));
    cJSON_AddItemToObject(root, "decoder", cJSON_Parse("{\"type\":\"ByteLevel\"}"));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON_AddArrayToObject(model, "merges");
    for (int b = 0; b < 256; b++) {
        char raw[2] = {(char)b, 0}, text[8];
        size_t n = bytes_to_bytelevel((const uint8_t *)raw, 1, text);
        text[n] = 0;
        cJSON_AddNumberToObject(vocab, text, b);
    }
    for (int i = 0; i < nadded; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", 256 + i);
        cJSON_AddStringToObject(t, "content", added[i]);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddItemToArray(add, t);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    sc_tokenizer *tok = NULL;
    if (tokenizer_load_json(&tok, s, strlen(s), "fim.json")) printf("load: %s\n", sc_error()), exit(1);
    free(s);
    return tok;
}

static sc_tokenizer *byte_tokenizer(const char *const *added, int nadded) { return byte_tokenizer_bos(added, nadded, -1); }

/* CodeLlama as it ships: SentencePiece-style (Prepend/Replace normalizer, byte_fallback), <unk> 0, <s> 1, </s> 2,
 * <0x00>..<0xFF> 3..258, then ▁ 259, a 260, b 261, c 262, ▁a 263 (merge "▁ a"), ▁<PRE> 264, ▁<SUF> 265,
 * ▁<MID> 266, ▁<EOT> 267 (special added tokens) */
static sc_tokenizer *codellama_sp_tokenizer(void) {
    cJSON *root = cJSON_CreateObject();
    cJSON *add = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON_AddItemToObject(root, "normalizer", cJSON_Parse("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\","
        "\"prepend\":\"▁\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"▁\"}]}"));
    cJSON_AddNullToObject(root, "pre_tokenizer");
    cJSON_AddItemToObject(root, "post_processor", cJSON_Parse("{\"type\":\"TemplateProcessing\",\"single\":["
        "{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
        "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}}"));
    cJSON_AddItemToObject(root, "decoder", cJSON_Parse("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\","
        "\"pattern\":{\"String\":\"▁\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
        "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}"));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON_AddBoolToObject(model, "fuse_unk", 1);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    const char *words[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) cJSON_AddNumberToObject(vocab, words[i], i);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        cJSON_AddNumberToObject(vocab, name, 3 + b);
    }
    const char *rest[] = {"▁", "a", "b", "c", "▁a", "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"};
    for (int i = 0; i < 9; i++) cJSON_AddNumberToObject(vocab, rest[i], 259 + i);
    cJSON_AddItemToObject(model, "merges", cJSON_Parse("[\"▁ a\"]"));
    for (int i = 0; i < 7; i++) {
        cJSON *t = cJSON_CreateObject();
        int id = i < 3 ? i : 264 + i - 3;
        cJSON_AddNumberToObject(t, "id", id);
        cJSON_AddStringToObject(t, "content", i < 3 ? words[i] : rest[5 + i - 3]);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddItemToArray(add, t);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    sc_tokenizer *tok = NULL;
    if (tokenizer_load_json(&tok, s, strlen(s), "codellama.json")) printf("load: %s\n", sc_error()), exit(1);
    free(s);
    return tok;
}

/* fim_prompt(prefix "ab", suffix "c") must be want[0..n) */
static void check_prompt(const char *label, const sc_tokenizer *tok, const char *format, const int32_t *want, int nw) {
    int32_t *ids = NULL;
    int n = 0;
    if (fim_prompt(tok, format, "ab", "c", &ids, &n)) {
        CHECKF(0, "%s: fim_prompt failed: %s", label, sc_error());
        return;
    }
    int same = n == nw;
    for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
    char got[256] = "";
    for (int i = 0, k = 0; i < n && k < 200; i++) k += snprintf(got + k, sizeof got - (size_t)k, " %d", ids[i]);
    CHECKF(same, "%s: prompt ids [%s ] differ from the family's layout", label, got);
    printf("%-10s prompt:%s\n", label, got);
    free(ids);
}

int main(void) {
    enum { a = 'a', b = 'b', c = 'c' };
    /* StarCoder-style (StarCoder's and SmallCoder's own tokenizers) */
    const char *star[] = {"<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<file_sep>"};
    sc_tokenizer *t = byte_tokenizer(star, 6);
    fim_format f;
    CHECK(fim_format_find(t, NULL, &f) == 0 && strcmp(f.name, "starcoder") == 0 && f.file_sep == 261 && f.bos < 0);
    check_prompt("starcoder", t, NULL, (int32_t[]){257, a, b, 259, c, 258}, 6);
    CHECK(fim_is_end_token(t, 256) && fim_is_end_token(t, 260) && !fim_is_end_token(t, 'a'));
    CHECK_FAILS_WITH(fim_format_find(t, "qwen", &f), "--fim-format qwen: the tokenizer lacks <|fim_prefix|>");
    CHECK_FAILS_WITH(fim_format_find(t, "gpt", &f), "--fim-format 'gpt' is unknown");
    tokenizer_free(t);

    /* Qwen2.5-Coder: <|endoftext|> 151643, <|im_start|>, <|im_end|>, ..., <|fim_prefix|> 151659, <|fim_middle|>,
     * <|fim_suffix|>, <|fim_pad|>, <|repo_name|>, <|file_sep|> */
    const char *qwen[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>",
                          "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"};
    t = byte_tokenizer(qwen, 9);
    CHECK(fim_format_find(t, "auto", &f) == 0 && strcmp(f.name, "qwen") == 0 && f.file_sep == 264);
    check_prompt("qwen", t, NULL, (int32_t[]){259, a, b, 261, c, 260}, 6);
    CHECK(fim_is_end_token(t, 256) && fim_is_end_token(t, 258) && fim_is_end_token(t, 262) && !fim_is_end_token(t, 257));
    CHECK_FAILS_WITH(fim_format_find(t, "starcoder", &f), "lacks <fim_prefix>");
    tokenizer_free(t);

    /* DeepSeek-Coder: <｜begin▁of▁sentence｜> 32013, <｜end▁of▁sentence｜> 32014, <｜fim▁hole｜> 32015,
     * <｜fim▁begin｜> 32016, <｜fim▁end｜> 32017; its post_processor adds BOS (the model card's FIM example
     * encodes "<｜fim▁begin｜>..." with tokenizer()), so the prompt starts with it, and so does a plain one */
    const char *ds[] = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜fim▁hole｜>", "<｜fim▁begin｜>",
                        "<｜fim▁end｜>"};
    t = byte_tokenizer_bos(ds, 5, 0);
    CHECK(fim_format_find(t, NULL, &f) == 0 && strcmp(f.name, "deepseek") == 0 && f.bos == 256);
    check_prompt("deepseek", t, NULL, (int32_t[]){256, 259, a, b, 258, c, 260}, 7);
    CHECK(fim_is_end_token(t, 257) && !fim_is_end_token(t, 256));
    {
        int32_t *ids;
        int n;
        CHECK(fim_prompt(t, NULL, "ab", NULL, &ids, &n) == 0 && n == 3 && ids[0] == 256 && ids[1] == a && ids[2] == b);
        free(ids);
    }
    tokenizer_free(t);
    /* the BOS is the tokenizer's: a DeepSeek-Coder file without the post_processor gets none (as HF would) */
    t = byte_tokenizer(ds, 5);
    CHECK(fim_format_find(t, NULL, &f) == 0 && f.bos < 0);
    check_prompt("deepseek-nobos", t, NULL, (int32_t[]){259, a, b, 258, c, 260}, 6);
    tokenizer_free(t);

    /* CodeLlama: <s> 1, </s> 2, then ▁<PRE> 32007, ▁<SUF> 32008, ▁<MID> 32009, ▁<EOT> 32010; Meta's
     * infilling_prompt_tokens: [bos, PRE] + prefix + [SUF] + suffix + [MID] */
    const char *cl[] = {"<s>", "</s>", "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"};
    t = byte_tokenizer_bos(cl, 6, 0);
    CHECK(fim_format_find(t, NULL, &f) == 0 && strcmp(f.name, "codellama") == 0);
    check_prompt("codellama", t, NULL, (int32_t[]){256, 258, a, b, 259, c, 260}, 7);
    CHECK(fim_is_end_token(t, 261) && fim_is_end_token(t, 257));
    tokenizer_free(t);

    /* CodeLlama's own SentencePiece tokenizer: the prefix is encoded with its "▁" (Meta's tokenizer.encode adds
     * the dummy prefix: "<PRE> {prefix}"), the suffix without (encode_infilling): [1, 264, ▁a, b, 265, c, 266] */
    t = codellama_sp_tokenizer();
    CHECK(fim_format_find(t, NULL, &f) == 0 && strcmp(f.name, "codellama") == 0 && f.bos == 1);
    check_prompt("codellama-sp", t, NULL, (int32_t[]){1, 264, 263, 261, 265, 262, 266}, 7);
    CHECK(fim_is_end_token(t, 267) && fim_is_end_token(t, 2) && !fim_is_end_token(t, 263));
    {
        /* generation decodes one token at a time: "▁a" continues the text as " a" (a plain decode strips it) */
        int32_t id = 263;
        char *out;
        size_t len;
        CHECK(tokenizer_decode_cont(t, &id, 1, &out, &len) == 0 && len == 2 && memcmp(out, " a", 2) == 0);
        free(out);
        CHECK(tokenizer_decode(t, &id, 1, &out, &len) == 0 && len == 1 && out[0] == 'a');
        free(out);
    }
    tokenizer_free(t);

    /* both StarCoder's and Qwen's tokens: auto takes the first family, --fim-format the named one */
    const char *both[] = {"<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<|fim_prefix|>", "<|fim_middle|>",
                          "<|fim_suffix|>"};
    t = byte_tokenizer(both, 6);
    check_prompt("auto(both)", t, NULL, (int32_t[]){256, a, b, 258, c, 257}, 6);
    check_prompt("qwen(both)", t, "qwen", (int32_t[]){259, a, b, 261, c, 260}, 6);
    tokenizer_free(t);

    /* no FIM tokens: one clear line; without a suffix the prompt is the plain text */
    const char *none[] = {"<|endoftext|>"};
    t = byte_tokenizer(none, 1);
    CHECK_FAILS_WITH(fim_format_find(t, NULL, &f), "no fill-in-the-middle tokens of a known family");
    int32_t *ids;
    int n;
    CHECK(fim_prompt(t, NULL, "ab", NULL, &ids, &n) == 0 && n == 2 && ids[0] == a && ids[1] == b);
    free(ids);
    tokenizer_free(t);
    return check_result("test_fim_format");
}
