/* test_tokenizer.c — the byte-level BPE tokenizer: byte mapping, merges by rank on hand-made tokenizer.json
 * files, added/special tokens, decode(encode(x)) == x on tricky bytes, the BPE heap and cache against a naive
 * merge loop, training against a naive trainer, thread safety, the hash, and bad input (each a clear error).
 * Agreement with HF tokenizers itself is tests/tokenizer_hf/. */
#include <cjson/cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/check.h"
#include "host/error.h"
#include "host/fileio.h"
#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"
#include "data/tokenizer_train.h"

static char tmpdir[256];

/* ---- building tokenizer.json files ---- */

/* Byte-level text of a raw string. */
static char *bl(const char *raw) {
    static char buf[8][256];
    static int k;
    char *b = buf[k++ % 8];
    size_t n = bytes_to_bytelevel((const uint8_t *)raw, strlen(raw), b);
    b[n] = 0;
    return b;
}

/* A BPE tokenizer: ids 0..255 are the bytes (in byte order), then one token per merge "a|b" (raw text) that
 * makes a new string, then the added tokens. pre: the pre_tokenizer JSON. */
static char *make_json(const char *const *merges, int nmerges, const char *const *added, int nadded, const char *pre,
                       const char *model_type, int ignore_merges) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON *add = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer", cJSON_Parse(pre));
    cJSON_AddItemToObject(root, "decoder", cJSON_Parse("{\"type\":\"ByteLevel\"}"));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", model_type);
    cJSON_AddBoolToObject(model, "ignore_merges", ignore_merges);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON *mlist = cJSON_AddArrayToObject(model, "merges");
    for (int b = 0; b < 256; b++) {
        char raw[2] = {(char)b, 0}, text[8];
        size_t n = bytes_to_bytelevel((const uint8_t *)raw, 1, text);
        text[n] = 0;
        cJSON_AddNumberToObject(vocab, text, b);
    }
    int id = 256;
    for (int i = 0; i < nmerges; i++) {
        char a[128], b[128], ab[256];
        const char *sp = strchr(merges[i], '|');
        snprintf(a, sizeof a, "%.*s", (int)(sp - merges[i]), merges[i]);
        snprintf(b, sizeof b, "%s", sp + 1);
        snprintf(ab, sizeof ab, "%s%s", a, b);
        char line[512];
        snprintf(line, sizeof line, "%s %s", bl(a), bl(b));
        cJSON_AddItemToArray(mlist, cJSON_CreateString(line));
        if (!cJSON_GetObjectItemCaseSensitive(vocab, bl(ab))) cJSON_AddNumberToObject(vocab, bl(ab), id++);
    }
    for (int i = 0; i < nadded; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", id++);
        cJSON_AddStringToObject(t, "content", added[i]);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddItemToArray(add, t);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static const char *BYTELEVEL = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}";

static sc_tokenizer *load(const char *json) {
    sc_tokenizer *t = NULL;
    if (tokenizer_load_json(&t, json, strlen(json), "test.json")) fprintf(stderr, "load: %s\n", sc_error());
    return t;
}

/* encodes text and compares with the expected ids (terminated by -1) */
static int encodes_to(const sc_tokenizer *t, const char *text, const int *want) {
    int32_t *ids;
    size_t n;
    if (tokenizer_encode(t, text, strlen(text), &ids, &n)) return 0;
    size_t k = 0;
    int ok = 1;
    for (; want[k] >= 0; k++) ok &= k < n && ids[k] == want[k];
    ok &= k == n;
    if (!ok) {
        fprintf(stderr, "  '%s' ->", text);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}

static int roundtrips(const sc_tokenizer *t, const char *text, size_t len) {
    int32_t *ids;
    size_t n, m;
    char *back;
    if (tokenizer_encode(t, text, len, &ids, &n)) return 0;
    int ok = tokenizer_decode(t, ids, n, &back, &m) == 0 && m == len && memcmp(back, text, len) == 0;
    free(ids);
    free(back);
    return ok;
}

/* ---- tests ---- */

static void test_byte_mapping(void) {
    /* GPT-2's bytes_to_unicode */
    CHECK(bytelevel_char('A') == 'A' && bytelevel_char('!') == '!' && bytelevel_char('~') == '~');
    CHECK(bytelevel_char(0xA1) == 0xA1 && bytelevel_char(0xFF) == 0xFF && bytelevel_char(0xAE) == 0xAE);
    CHECK(bytelevel_char(0) == 0x100 && bytelevel_char(' ') == 0x120 && bytelevel_char('\n') == 0x10A);
    CHECK(bytelevel_char('\t') == 0x109 && bytelevel_char(0x7F) == 0x121 && bytelevel_char(0xAD) == 0x143);
    int seen[324] = {0}, bijective = 1;
    for (int b = 0; b < 256; b++) {
        uint32_t c = bytelevel_char((uint8_t)b);
        bijective &= c < 324 && !seen[c] && bytelevel_byte(c) == b;
        if (c < 324) seen[c] = 1;
    }
    CHECK(bijective);
    CHECK(bytelevel_byte(0x144) == -1 && bytelevel_byte(' ') == -1 && bytelevel_byte(0x4E2D) == -1);
    char s[8];
    uint8_t raw[8];
    CHECK(bytes_to_bytelevel((const uint8_t *)" a\n", 3, s) == 5 && memcmp(s, "\xC4\xA0" "a\xC4\x8A", 5) == 0);
    CHECK(bytelevel_to_bytes("\xC4\xA0" "a", 3, raw) == 2 && raw[0] == ' ' && raw[1] == 'a');
    CHECK(bytelevel_to_bytes(" ", 1, raw) == -1); /* a raw space is not a byte-level character */
}

static void test_merges(void) {
    const char *m[] = {"h|e", "l|l", "he|ll", "hell|o", " |w", "o|r", " w|or", "l|d", " wor|ld", "a|a"};
    char *json = make_json(m, 10, NULL, 0, BYTELEVEL, "BPE", 0);
    sc_tokenizer *t = load(json);
    free(json);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(tokenizer_vocab_size(t) == 256 + 10);
    int hello_world[] = {259, 264, -1}; /* hello, " world" */
    CHECK(encodes_to(t, "hello world", hello_world));
    int aaa[] = {265, 'a', -1}, aaaa[] = {265, 265, -1};
    CHECK(encodes_to(t, "aaa", aaa)); /* the leftmost pair first */
    CHECK(encodes_to(t, "aaaa", aaaa));
    int unmerged[] = {'x', 'y', 'z', -1}, empty[] = {-1};
    CHECK(encodes_to(t, "xyz", unmerged));
    CHECK(encodes_to(t, "", empty));
    CHECK(tokenizer_token_id(t, "hello") == 259 && tokenizer_token_id(t, bl(" world")) == 264);
    CHECK(tokenizer_token_id(t, "nope") == -1);
    tokenizer_free(t);

    /* the rank decides, not the position: (b c) ranked before (a b) gives a + bc */
    const char *m1[] = {"b|c", "a|b"}, *m2[] = {"a|b", "b|c"};
    json = make_json(m1, 2, NULL, 0, BYTELEVEL, "BPE", 0);
    t = load(json);
    int a_bc[] = {'a', 256, -1}, ab_c[] = {256, 'c', -1};
    CHECK(t && encodes_to(t, "abc", a_bc));
    tokenizer_free(t);
    free(json);
    json = make_json(m2, 2, NULL, 0, BYTELEVEL, "BPE", 0);
    t = load(json);
    CHECK(t && encodes_to(t, "abc", ab_c));
    tokenizer_free(t);
    free(json);

    /* ignore_merges: a whole pre-token found in the vocabulary is one id even where merges would not make it */
    const char *m3[] = {"b|c", "a|b", "ab|c"};
    int merged[] = {'a', 256, -1}, whole[] = {258, -1};
    for (int ignore = 0; ignore < 2; ignore++) {
        json = make_json(m3, 3, NULL, 0, BYTELEVEL, "BPE", ignore);
        t = load(json);
        CHECK(t && encodes_to(t, "abc", ignore ? whole : merged));
        tokenizer_free(t);
        free(json);
    }
}

/* Bytes missing from the vocabulary are dropped (HF does the same without an unk_token); a pre-token made only
 * of them encodes to nothing, cached or not. */
static void test_missing_bytes(void) {
    const char *m[] = {"a|b"};
    char *json = make_json(m, 1, NULL, 0, BYTELEVEL, "BPE", 0);
    cJSON *root = cJSON_Parse(json);
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "model"), "vocab");
    cJSON_DeleteItemFromObjectCaseSensitive(vocab, bl("\xc3"));
    cJSON_DeleteItemFromObjectCaseSensitive(vocab, bl("\xa9"));
    char *edited = cJSON_PrintUnformatted(root);
    sc_tokenizer *t = load(edited);
    CHECK(t != NULL);
    if (t) {
        int ab_[] = {256, -1}, none[] = {-1}, sp_x[] = {' ', 'x', -1};
        for (int twice = 0; twice < 2; twice++) {
            CHECK(encodes_to(t, "ab\xc3\xa9", ab_));
            CHECK(encodes_to(t, "\xc3\xa9\xc3\xa9", none));
            CHECK(encodes_to(t, "\xc3\xa9 x", sp_x)); /* " x" is a piece of its own: its space stays */
        }
        tokenizer_free(t);
    }
    cJSON_Delete(root);
    free(edited);
    free(json);
}

static void test_specials(void) {
    const char *m[] = {"h|i"};
    const char *added[] = {"<|endoftext|>", "<s>", "<s>>"};
    char *json = make_json(m, 1, added, 3, BYTELEVEL, "BPE", 0);
    sc_tokenizer *t = load(json);
    free(json);
    CHECK(t != NULL);
    if (!t) return;
    int eot = tokenizer_token_id(t, "<|endoftext|>");
    CHECK(eot == 257 && tokenizer_token_id(t, "<s>") == 258 && tokenizer_token_id(t, "<s>>") == 259);
    int w1[] = {256, 257, 256, -1};
    CHECK(encodes_to(t, "hi<|endoftext|>hi", w1));
    int w2[] = {257, 257, -1};
    CHECK(encodes_to(t, "<|endoftext|><|endoftext|>", w2));
    int w3[] = {'<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', -1}; /* a prefix is plain text */
    CHECK(encodes_to(t, "<|endoftext", w3));
    int w4[] = {259, 258, -1}; /* leftmost-longest */
    CHECK(encodes_to(t, "<s>><s>", w4));
    char *out;
    size_t n;
    int32_t ids[] = {256, 257, 259};
    CHECK(tokenizer_decode(t, ids, 3, &out, &n) == 0 && strcmp(out, "hi<|endoftext|><s>>") == 0);
    free(out);
    tokenizer_free(t);
}

/* The test tokenizer of `vocab` ids, trained on the texts below into tmpdir/<name> (its path into path) and
 * loaded; NULL, after a failed check, when it cannot be had. */
static sc_tokenizer *trained(const char *name, int vocab, char path[512]) {
    static const char *texts[] = {
        "def main(argv):\n    for i in range(10):\n        print(i, argv)\n    return 0\n",
        "int main(int argc, char **argv) {\n\tfor (int i = 0; i < argc; i++) printf(\"%s\\n\", argv[i]);\n}\n",
        "größe = 'straße'  # ünïcödé\n变量 = 1  # 🎉🎉 emoji\r\n\r\n",
        "        indented    text   with    runs of     spaces\n\n\n\n",
    };
    size_t lens[4];
    for (int i = 0; i < 4; i++) lens[i] = strlen(texts[i]);
    tokenizer_train_options o;
    tokenizer_train_defaults(&o);
    o.vocab_size = vocab;
    o.min_frequency = 1;
    snprintf(path, 512, "%s/%s", tmpdir, name);
    sc_tokenizer *t = NULL;
    if (tokenizer_train_texts(texts, lens, 4, &o, path, NULL)) fprintf(stderr, "train: %s\n", sc_error());
    else if (tokenizer_load(&t, path)) t = NULL;
    CHECK(t != NULL);
    return t;
}

static void test_roundtrip(void) {
    char path[512];
    sc_tokenizer *t = trained("rt.json", 400, path);
    if (!t) return;
    const char *cases[] = {
        "", " ", "\n", "\r\n\r\n", "\t\t x", "a", "hello world", "   leading", "trailing   ", "don't I'll 'S",
        "größe 变量 🎉👨‍👩‍👧 🇩🇪 \u00a0\u3000 \xe2\x80\xa8", "<|endoftext|>", "x<fim_prefix>y<fim_suffix>z<fim_middle>",
        "1234567890 ½ Ⅻ ١٢٣", "\xff\xfe invalid \x80 utf-8 \xc3", "\xed\xa0\x80 surrogate", "\xf4\x90\x80\x80 too big",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int ok = roundtrips(t, cases[i], strlen(cases[i]));
        if (!ok) fprintf(stderr, "  roundtrip failed: case %zu\n", i);
        CHECK(ok);
    }
    /* every byte, alone and in random strings; long runs; a long line */
    char b[1];
    int all = 1;
    for (int i = 0; i < 256; i++) b[0] = (char)i, all &= roundtrips(t, b, 1);
    CHECK(all);
    size_t big = 1 << 20;
    char *s = sc_malloc(big);
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < big; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            s[i] = round == 0 ? (char)x : round == 1 ? " \t\n\r"[x & 3] : round == 2 ? "ab c\xc3\xa9!1"[x % 8] : ' ';
        }
        CHECK(roundtrips(t, s, big));
    }
    free(s);
    /* special ids decode to their text; the JSON-given ids are where the trainer put them */
    for (int i = 0; i < TOKENIZER_NSPECIAL; i++) CHECK(tokenizer_token_id(t, tokenizer_specials[i]) == i);
    CHECK(tokenizer_token_id(t, SC_TOK_FIM_MIDDLE) == 2 && tokenizer_token_id(t, SC_TOK_FILE_SEP) == 5);
    tokenizer_free(t);
}

/* The merge loop must equal the definition: repeatedly merge the adjacent pair of lowest (rank, position). */
static void naive_bpe(const sc_tokenizer *t, const uint8_t *w, size_t n, id_vec *out) {
    int32_t *s = sc_malloc((n + 1) * sizeof *s);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (t->byte_id[w[i]] >= 0) s[m++] = t->byte_id[w[i]];
    for (;;) {
        uint32_t best = UINT32_MAX, r;
        int32_t id, best_id = -1;
        size_t at = 0;
        for (size_t i = 0; i + 1 < m; i++)
            if (pairmap_get(&t->merges, s[i], s[i + 1], &r, &id) && r < best) best = r, best_id = id, at = i;
        if (best_id < 0) break;
        s[at] = best_id;
        memmove(s + at + 1, s + at + 2, (m - at - 2) * sizeof *s);
        m--;
    }
    for (size_t i = 0; i < m; i++) idvec_push(out, s[i]);
    free(s);
}

static void test_bpe_against_naive(void) {
    char path[512];
    sc_tokenizer *t = trained("naive.json", 700, path);
    if (!t) return;
    uint64_t x = 12345;
    int same = 1, cached = 1;
    const char alphabet[] = "aeinrst prt\n\t()_";
    for (int k = 0; k < 20000; k++) {
        uint8_t w[300];
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = 1 + x % (k % 10 == 0 ? 300 : 24);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            w[i] = (uint8_t)alphabet[x % (sizeof alphabet - 1)];
        }
        id_vec a = {0}, b = {0}, c = {0}, d = {0};
        tokenizer_bpe_merge(t, w, n, &a);
        naive_bpe(t, w, n, &b);
        tokenizer_bpe_word(t, w, n, &c); /* fills the cache */
        tokenizer_bpe_word(t, w, n, &d); /* hits it */
        same &= a.n == b.n && memcmp(a.v, b.v, a.n * 4) == 0;
        cached &= a.n == c.n && a.n == d.n && memcmp(a.v, c.v, a.n * 4) == 0 && memcmp(a.v, d.v, a.n * 4) == 0;
        free(a.v), free(b.v), free(c.v), free(d.v);
    }
    CHECK(same);
    CHECK(cached);
    tokenizer_free(t);
}

/* ---- training against a naive trainer: recount every pair each round, take the most frequent (ties: the
 * smaller (a, b) ids), merge it everywhere ---- */

typedef struct {
    char **w;
    size_t *len;
    long *count;
    int n, cap;
} words;

static void add_word(void *arg, const uint8_t *w, size_t n) {
    words *ws = arg;
    for (int i = 0; i < ws->n; i++)
        if (ws->len[i] == n && memcmp(ws->w[i], w, n) == 0) {
            ws->count[i]++;
            return;
        }
    if (ws->n == ws->cap) {
        ws->cap = ws->cap ? ws->cap * 2 : 64;
        ws->w = realloc(ws->w, ws->cap * sizeof *ws->w);
        ws->len = realloc(ws->len, ws->cap * sizeof *ws->len);
        ws->count = realloc(ws->count, ws->cap * sizeof *ws->count);
    }
    ws->w[ws->n] = sc_malloc(n);
    memcpy(ws->w[ws->n], w, n);
    ws->len[ws->n] = n;
    ws->count[ws->n++] = 1;
}

static void no_added(void *arg, int32_t id) { (void)arg, (void)id; }

static void test_training(void) {
    const char *texts[] = {"the cat sat on the mat; the cat ate the rat\n", "if (x == 1) { return x + 1; }\n\tx = x * 2;\n",
                           "aaaaaaa bbbbbb aaaa abab abab ababab\n", "größe größer groß 🎉🎉 🎉\n"};
    size_t lens[4];
    for (int i = 0; i < 4; i++) lens[i] = strlen(texts[i]);
    char path[512];
    snprintf(path, sizeof path, "%s/train.json", tmpdir);
    tokenizer_train_options o;
    tokenizer_train_defaults(&o);
    o.vocab_size = 330;
    o.min_frequency = 2;
    tokenizer_train_stats st;
    CHECK(tokenizer_train_texts(texts, lens, 4, &o, path, &st) == 0);
    sc_tokenizer *t;
    if (tokenizer_load(&t, path)) {
        CHECK(!"trained tokenizer loads");
        return;
    }
    CHECK(st.files == 4 && (int)t->nmerges == st.merges && tokenizer_vocab_size(t) == st.vocab_size);

    words ws = {0};
    for (int i = 0; i < 4; i++) tokenizer_pretokenize(t, texts[i], lens[i], add_word, no_added, &ws);
    /* symbols: byte b = id 6 + b; tokens' bytes kept to find duplicates */
    int32_t **sym = sc_malloc(ws.n * sizeof *sym);
    size_t *slen = sc_malloc(ws.n * sizeof *slen);
    for (int i = 0; i < ws.n; i++) {
        sym[i] = sc_malloc(ws.len[i] * sizeof **sym);
        for (size_t k = 0; k < ws.len[i]; k++) sym[i][k] = 6 + (uint8_t)ws.w[i][k];
        slen[i] = ws.len[i];
    }
    char tok[1024][64];
    size_t tlen[1024];
    for (int b = 0; b < 256; b++) tok[6 + b][0] = (char)b, tlen[6 + b] = 1;
    int ntok = 262, nm = 0, agree = 1;
    static char merged[1024][1024];
    memset(merged, 0, sizeof merged);
    while (ntok < o.vocab_size) {
        long best = 0;
        int ba = -1, bb = -1;
        static long cnt[1024][1024];
        memset(cnt, 0, sizeof cnt);
        for (int i = 0; i < ws.n; i++)
            for (size_t k = 0; k + 1 < slen[i]; k++) cnt[sym[i][k]][sym[i][k + 1]] += ws.count[i];
        for (int a = 0; a < ntok; a++)
            for (int b = 0; b < ntok; b++)
                if (!merged[a][b] && cnt[a][b] > best) best = cnt[a][b], ba = a, bb = b;
        if (best < o.min_frequency) break;
        merged[ba][bb] = 1;
        char s[128];
        size_t sl = tlen[ba] + tlen[bb];
        memcpy(s, tok[ba], tlen[ba]);
        memcpy(s + tlen[ba], tok[bb], tlen[bb]);
        int id = -1;
        for (int k = 6; k < ntok; k++)
            if (tlen[k] == sl && memcmp(tok[k], s, sl) == 0) id = k;
        if (id < 0) id = ntok++, memcpy(tok[id], s, sl), tlen[id] = sl;
        /* our trainer's merge number nm must be this one */
        uint32_t r;
        int32_t got;
        agree &= pairmap_get(&t->merges, ba, bb, &r, &got) && r == (uint32_t)nm && got == id;
        nm++;
        for (int i = 0; i < ws.n; i++) {
            size_t j = 0;
            for (size_t k = 0; k < slen[i];)
                if (k + 1 < slen[i] && sym[i][k] == ba && sym[i][k + 1] == bb) sym[i][j++] = id, k += 2;
                else sym[i][j++] = sym[i][k++];
            slen[i] = j;
        }
    }
    CHECK(agree);
    CHECK(nm == (int)t->nmerges && ntok == tokenizer_vocab_size(t));
    for (int i = 0; i < ws.n; i++) free(ws.w[i]), free(sym[i]);
    free(ws.w), free(ws.len), free(ws.count), free(sym), free(slen);
    tokenizer_free(t);
}

static void test_threads_and_hash(void) {
    char path[512];
    sc_tokenizer *t = trained("th.json", 500, path);
    if (!t) return;
    size_t n = 200000;
    char *text = sc_malloc(n);
    for (size_t i = 0; i < n; i++) text[i] = "for i in range(10):\n  x += i  # größe\n"[i % 38];
    int32_t *ref;
    size_t nref;
    CHECK(tokenizer_encode(t, text, n, &ref, &nref) == 0);
    int bad = 0;
#pragma omp parallel for num_threads(4) reduction(+ : bad)
    for (int k = 0; k < 16; k++) {
        int32_t *ids;
        size_t m;
        size_t len = n - (size_t)k * 1000;
        if (tokenizer_encode(t, text, len, &ids, &m)) bad++;
        else if (k == 0) bad += m != nref || memcmp(ids, ref, m * 4) != 0;
        else bad += m > nref;
        free(ids);
    }
    CHECK(bad == 0);
    free(ref);
    free(text);

    /* more distinct words than the per-thread cache keeps (2^20): it is cleared and refilled on the way, and
     * a second pass (hits after the refill) must give the same ids as the first */
    size_t nw = (1u << 20) + 50000;
    text = sc_malloc(nw * 9 + 1);
    size_t tlen = 0;
    for (size_t i = 0; i < nw; i++) tlen += (size_t)sprintf(text + tlen, " %08zu", i * 7919 % 100000000);
    int32_t *a, *b;
    size_t na, nb;
    CHECK(tokenizer_encode(t, text, tlen, &a, &na) == 0);
    CHECK(tokenizer_encode(t, text, tlen, &b, &nb) == 0);
    CHECK(na == nb && memcmp(a, b, na * sizeof *a) == 0);
    char *back;
    size_t nback;
    CHECK(tokenizer_decode(t, a, na, &back, &nback) == 0 && nback == tlen && memcmp(back, text, tlen) == 0);
    free(a), free(b), free(back), free(text);

    /* the hash ignores JSON formatting but not content */
    char *json;
    size_t len;
    CHECK(file_read_all(path, &json, &len) == 0);
    cJSON *root = cJSON_Parse(json);
    char *compact = cJSON_PrintUnformatted(root);
    sc_tokenizer *t2 = load(compact);
    CHECK(t2 && tokenizer_hash(t2) == tokenizer_hash(t) && tokenizer_hash(t) != 0);
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "model"), "merges");
    cJSON_DeleteItemFromArray(merges, cJSON_GetArraySize(merges) - 1);
    char *fewer = cJSON_PrintUnformatted(root);
    sc_tokenizer *t3 = load(fewer);
    CHECK(t3 && tokenizer_hash(t3) != tokenizer_hash(t));
    tokenizer_free(t2);
    tokenizer_free(t3);
    free(compact), free(fewer), free(json);
    cJSON_Delete(root);
    tokenizer_free(t);
}

static void test_bad_input(void) {
    sc_tokenizer *t = NULL;
    char path[512];
    const char *m[] = {"a|b"};
    char *good = make_json(m, 1, NULL, 0, BYTELEVEL, "BPE", 0);
#define LOAD_FAILS(json, needle) CHECK_FAILS_WITH(tokenizer_load_json(&t, json, strlen(json), "tok.json"), needle)
    LOAD_FAILS("{\"model\": {", "not valid JSON");
    LOAD_FAILS("[1, 2]", "not a JSON object");
    LOAD_FAILS("{\"pre_tokenizer\": null}", "missing \"model\"");
    char *s = make_json(m, 1, NULL, 0, BYTELEVEL, "Unigram", 0);
    LOAD_FAILS(s, "model type 'Unigram' is not supported");
    free(s);
    s = make_json(m, 1, NULL, 0, BYTELEVEL, "WordPiece", 0);
    LOAD_FAILS(s, "model type 'WordPiece' is not supported");
    free(s);
    /* missing merges, a merge naming an unknown token, bad merge syntax */
    cJSON *root = cJSON_Parse(good), *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON_DeleteItemFromObject(model, "merges");
    s = cJSON_PrintUnformatted(root);
    LOAD_FAILS(s, "model.merges: missing");
    free(s);
    cJSON_AddItemToObject(model, "merges", cJSON_Parse("[\"a b\", \"ab zz\"]"));
    s = cJSON_PrintUnformatted(root);
    LOAD_FAILS(s, "model.merges[1] 'ab zz': token 'zz' is not in the vocabulary");
    free(s);
    cJSON_ReplaceItemInObject(model, "merges", cJSON_Parse("[\"a b c\"]"));
    s = cJSON_PrintUnformatted(root);
    LOAD_FAILS(s, "model.merges[0] 'a b c': expected two tokens");
    free(s);
    cJSON_ReplaceItemInObject(model, "merges", cJSON_Parse("[[\"a\", \"b\"]]"));
    cJSON_ReplaceItemInObject(root, "normalizer", cJSON_Parse("{\"type\": \"BertNormalizer\"}"));
    s = cJSON_PrintUnformatted(root);
    LOAD_FAILS(s, "normalizer type 'BertNormalizer' is not supported");
    free(s);
    cJSON_ReplaceItemInObject(root, "normalizer", cJSON_CreateNull());
    cJSON_ReplaceItemInObject(root, "pre_tokenizer", cJSON_Parse("{\"type\": \"Metaspace\"}"));
    s = cJSON_PrintUnformatted(root);
    LOAD_FAILS(s, "pre_tokenizer Metaspace: \"replacement\" must be one character");
    free(s);
    cJSON_ReplaceItemInObject(root, "pre_tokenizer", cJSON_Parse("{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, "
                                                                 "\"behavior\": \"Isolated\", \"invert\": false}"));
    s = cJSON_PrintUnformatted(root);
    LOAD_FAILS(s, "regex '('");
    free(s);
    cJSON_ReplaceItemInObject(root, "pre_tokenizer", cJSON_Parse(BYTELEVEL));
    cJSON_ReplaceItemInObject(root, "decoder", cJSON_Parse("{\"type\": \"WordPiece\"}"));
    s = cJSON_PrintUnformatted(root);
    LOAD_FAILS(s, "decoder type 'WordPiece' is not supported");
    free(s);
    cJSON_ReplaceItemInObject(root, "decoder", cJSON_Parse("{\"type\": \"ByteLevel\"}"));
    s = cJSON_PrintUnformatted(root);
    CHECK(tokenizer_load_json(&t, s, strlen(s), "tok.json") == 0); /* tuple merges load */
    tokenizer_free(t);
    free(s);
    /* ids are bounded where they are read (issue 14): 2^25 would size the id tables for 32M entries */
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON_AddNumberToObject(vocab, "far", 33554432.0);
    s = cJSON_PrintUnformatted(root);
    LOAD_FAILS(s, "model.vocab['far']: id must be an integer in [0, 4194304)");
    free(s);
    cJSON_DeleteItemFromObject(vocab, "far");
    cJSON_ReplaceItemInObject(root, "added_tokens", cJSON_Parse("[{\"id\": 7.5, \"content\": \"<x>\"}]"));
    s = cJSON_PrintUnformatted(root);
    LOAD_FAILS(s, "added_tokens: each entry needs an integer \"id\"");
    free(s);
    cJSON_Delete(root);

    snprintf(path, sizeof path, "%s/missing.json", tmpdir);
    CHECK_FAILS_WITH(tokenizer_load(&t, path), "missing.json");
    CHECK(t == NULL);

    /* decode: ids outside the vocabulary name the id */
    t = load(good);
    char *out = NULL;
    size_t n;
    int32_t ids[] = {97, 257};
    CHECK_FAILS_WITH(tokenizer_decode(t, ids, 2, &out, &n), "token id 257 (position 1) is not in the vocabulary");
    int32_t neg[] = {-1};
    CHECK_FAILS_WITH(tokenizer_decode(t, neg, 1, &out, &n), "token id -1");
    CHECK(out == NULL);
    tokenizer_free(t);
    free(good);

    /* training: nothing usable, vocabulary too small, an output path that cannot be written */
    tokenizer_train_options o;
    tokenizer_train_defaults(&o);
    const char *bin[] = {"\0binary"}, *txt[] = {"some text here"};
    size_t binlen[] = {7}, txtlen[] = {14};
    snprintf(path, sizeof path, "%s/out.json", tmpdir);
    CHECK_FAILS_WITH(tokenizer_train_texts(bin, binlen, 1, &o, path, NULL), "no usable text");
    o.vocab_size = 100;
    CHECK_FAILS_WITH(tokenizer_train_texts(txt, txtlen, 1, &o, path, NULL), "vocab size 100");
    CHECK(access(path, F_OK) != 0);
    o.vocab_size = 300;
    snprintf(path, sizeof path, "%s/no/such/dir/out.json", tmpdir);
    CHECK_FAILS_WITH(tokenizer_train_texts(txt, txtlen, 1, &o, path, NULL), "out.json");

    /* files: unreadable, binary and non-UTF-8 ones are skipped and counted, the rest trains */
    char good_path[512], bin_path[512], latin_path[512], gone[512];
    snprintf(good_path, sizeof good_path, "%s/good.py", tmpdir);
    snprintf(bin_path, sizeof bin_path, "%s/bin.py", tmpdir);
    snprintf(latin_path, sizeof latin_path, "%s/latin1.py", tmpdir);
    snprintf(gone, sizeof gone, "%s/vanished.py", tmpdir);
    CHECK(atomic_write_file(good_path, "x = 1\ny = x + 1\n", 16) == 0);
    CHECK(atomic_write_file(bin_path, "ab\0cd", 5) == 0);
    CHECK(atomic_write_file(latin_path, "caf\xe9 = 1\n", 9) == 0);
    char *paths[] = {good_path, bin_path, latin_path, gone};
    tokenizer_train_stats st;
    snprintf(path, sizeof path, "%s/files.json", tmpdir);
    CHECK(tokenizer_train_files(paths, 4, &o, path, &st) == 0);
    CHECK(st.files == 1 && st.skipped_binary == 1 && st.skipped_not_utf8 == 1 && st.unreadable == 1);
    CHECK(st.bytes == 16);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_tokenizer.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_byte_mapping();
    test_merges();
    test_missing_bytes();
    test_specials();
    test_roundtrip();
    test_bpe_against_naive();
    test_training();
    test_threads_and_hash();
    test_bad_input();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_result("test_tokenizer");
}
