/* test_infer_gguf_spm.c — `export gguf` of a SentencePiece-style tokenizer.json (GGUF's "llama" tokenizer model),
 * read back by our GGUF reader, and the ids that llama.cpp's SentencePiece algorithm gets from what was written
 * (tokens, scores, types, add_space_prefix; re-implemented here from its description: specials cut out longest
 * first, a ▁ before each stretch after a special, spaces as ▁, characters joined pairwise by the highest score,
 * leftmost first, <0xNN> for characters that are no token) compared with the ids of our tokenizer.json loader (HF's
 * BPE), on this repository's source files and hard text. The tokenizer is built here the way HF converts a
 * SentencePiece model (pieces learned on our sources, every two-piece split of a piece a merge, merges in piece
 * order) and, when tokenizer_hf_published has fetched it, the published 32000-token Llama-2-style file. Refusals:
 * a missing or non-consecutive merge, a token with a character that is no token, NFKC, no byte_fallback, Metaspace
 * split over ▁-inner tokens, a missing byte token — one line each, no file left. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/tokenizer.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/model.h"
#include "infer/gguf.h"
#include "tests/check.h"

#define SPACE "\xe2\x96\x81"

/* ---------------- a SentencePiece-style tokenizer.json, learned from text ---------------- */

typedef struct {
    char **s;  /* piece text (UTF-8, spaces as ▁) */
    int n, cap;
} strlist;

static int sl_find(const strlist *l, const char *s) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->s[i], s) == 0) return i;
    return -1;
}
static int sl_add(strlist *l, const char *s) {
    int i = sl_find(l, s);
    if (i >= 0) return i;
    if (l->n == l->cap) l->s = realloc(l->s, (size_t)(l->cap = l->cap * 2 + 64) * sizeof(char *));
    l->s[l->n] = strdup(s);
    return l->n++;
}

static size_t u8len(const char *s) {
    uint8_t c = (uint8_t)*s;
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Learns npieces merged pieces from text (valid UTF-8) as SentencePiece's BPE does on one sentence: characters
 * first, then the most frequent adjacent pair, repeatedly. chars and pieces get the symbols' texts. */
static void learn(const char *text, int npieces, strlist *chars, strlist *pieces) {
    size_t n = strlen(text);
    char *norm = malloc(n * 3 + 4), *w = norm;
    w += sprintf(w, SPACE);
    for (const char *p = text; *p; p++) w += *p == ' ' ? sprintf(w, SPACE) : (*w = *p, 1);
    *w = 0;
    enum { SMAX = 2048 };
    strlist sym = {0};
    int *seq = malloc(strlen(norm) * sizeof(int)), ns = 0;
    for (const char *p = norm; *p;) {
        char c[8] = {0};
        size_t k = u8len(p);
        memcpy(c, p, k);
        seq[ns++] = sl_add(&sym, c);
        sl_add(chars, c);
        p += k;
    }
    int *count = calloc((size_t)SMAX * SMAX, sizeof(int));
    for (int m = 0; m < npieces && sym.n < SMAX; m++) {
        int best = 0, ba = -1, bb = -1;
        for (int i = 0; i + 1 < ns; i++) count[seq[i] * SMAX + seq[i + 1]]++;
        for (int i = 0; i + 1 < ns; i++) {
            int *c = &count[seq[i] * SMAX + seq[i + 1]];
            if (*c > best || (*c == best && *c && (seq[i] < ba || (seq[i] == ba && seq[i + 1] < bb))))
                best = *c, ba = seq[i], bb = seq[i + 1];
        }
        for (int i = 0; i + 1 < ns; i++) count[seq[i] * SMAX + seq[i + 1]] = 0;
        if (best < 2) break;
        char cat[512];
        snprintf(cat, sizeof cat, "%s%s", sym.s[ba], sym.s[bb]);
        int id = sl_add(&sym, cat);
        sl_add(pieces, cat);
        int k = 0;
        for (int i = 0; i < ns; i++)
            if (i + 1 < ns && seq[i] == ba && seq[i + 1] == bb) seq[k++] = id, i++;
            else seq[k++] = seq[i];
        ns = k;
    }
    free(count), free(seq), free(norm);
    for (int i = 0; i < sym.n; i++) free(sym.s[i]);
    free(sym.s);
}

/* tokenizer.json as HF's LlamaConverter writes a SentencePiece BPE model: ids <unk> <s> </s>, the 256 byte tokens,
 * the pieces, the characters, CodeLlama's ▁<PRE> ▁<SUF> ▁<MID> ▁<EOT>; merges = every split of each piece into two
 * tokens, in piece order. Returns the JSON object; *nvocab the number of ids. */
static cJSON *sp_tokenizer(const strlist *chars, const strlist *pieces, int *nvocab) {
    strlist v = {0};
    sl_add(&v, "<unk>"), sl_add(&v, "<s>"), sl_add(&v, "</s>");
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        sl_add(&v, name);
    }
    for (int i = 0; i < pieces->n; i++) sl_add(&v, pieces->s[i]);
    for (int i = 0; i < chars->n; i++) sl_add(&v, chars->s[i]);
    const char *fim[] = {SPACE "<PRE>", SPACE "<SUF>", SPACE "<MID>", SPACE "<EOT>"};
    int fim0 = v.n;
    for (int i = 0; i < 4; i++) sl_add(&v, fim[i]);
    cJSON *root = cJSON_CreateObject(), *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; i < v.n; i++) {
        if (i >= 3 && i < fim0) continue;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", i);
        cJSON_AddStringToObject(t, "content", v.s[i]);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddItemToArray(added, t);
    }
    cJSON_AddItemToObject(root, "normalizer", cJSON_Parse(
        "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"" SPACE "\"},"
        "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"" SPACE "\"}]}"));
    cJSON_AddNullToObject(root, "pre_tokenizer");
    cJSON_AddItemToObject(root, "post_processor", cJSON_Parse(
        "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
        "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
        "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}}"));
    cJSON_AddItemToObject(root, "decoder", cJSON_Parse(
        "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"" SPACE "\"},"
        "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
        "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}"));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON_AddBoolToObject(model, "fuse_unk", 1);
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab"), *merges = cJSON_AddArrayToObject(model, "merges");
    for (int i = 0; i < v.n; i++) cJSON_AddNumberToObject(vocab, v.s[i], i);
    for (int p = 0; p < pieces->n; p++) {
        const char *s = pieces->s[p];
        size_t n = strlen(s);
        /* HF sorts one piece's splits by the ids of their halves */
        int pl[64], pr[64], k = 0;
        for (size_t c = u8len(s); c < n && k < 64; c += u8len(s + c)) {
            char l[512], r[512];
            snprintf(l, sizeof l, "%.*s", (int)c, s), snprintf(r, sizeof r, "%s", s + c);
            int il = sl_find(&v, l), ir = sl_find(&v, r);
            if (il >= 0 && ir >= 0) pl[k] = il, pr[k] = ir, k++;
        }
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < k; b++)
                if (pl[b] < pl[a] || (pl[b] == pl[a] && pr[b] < pr[a])) {
                    int x = pl[a], y = pr[a];
                    pl[a] = pl[b], pr[a] = pr[b], pl[b] = x, pr[b] = y;
                }
        for (int a = 0; a < k; a++) {
            char m[1100];
            snprintf(m, sizeof m, "%s %s", v.s[pl[a]], v.s[pr[a]]);
            cJSON_AddItemToArray(merges, cJSON_CreateString(m));
        }
    }
    *nvocab = v.n;
    for (int i = 0; i < v.n; i++) free(v.s[i]);
    free(v.s);
    return root;
}

/* ---------------- llama.cpp's SentencePiece tokenization over what the GGUF holds ---------------- */

typedef struct {
    int n;
    const char **text; /* into the GGUF image, not NUL-terminated */
    uint32_t *len;
    float *score;
    int32_t *type;
    int *sorted;       /* ids by text, for lookups */
    int add_prefix;
} gv;

static const gv *cmp_gv;
static int cmp_text(const char *a, size_t la, const char *b, size_t lb) {
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}
static int cmp_ids(const void *x, const void *y) {
    int a = *(const int *)x, b = *(const int *)y;
    return cmp_text(cmp_gv->text[a], cmp_gv->len[a], cmp_gv->text[b], cmp_gv->len[b]);
}
static int gv_find(const gv *v, const char *s, size_t n) {
    int lo = 0, hi = v->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, id = v->sorted[mid];
        int c = cmp_text(v->text[id], v->len[id], s, n);
        if (!c) return id;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static int gv_load(gv *v, const gguf_file *g) {
    const gguf_kv *tk = gguf_find_kv(g, "tokenizer.ggml.tokens"), *sc = gguf_find_kv(g, "tokenizer.ggml.scores");
    const gguf_kv *ty = gguf_find_kv(g, "tokenizer.ggml.token_type");
    const gguf_kv *ap = gguf_find_kv(g, "tokenizer.ggml.add_space_prefix");
    if (!tk || !sc || !ty || !ap || sc->arr_type != GGUF_T_F32 || ty->arr_type != GGUF_T_I32 || sc->n != tk->n ||
        ty->n != tk->n)
        return -1;
    v->n = (int)tk->n;
    v->text = calloc(tk->n, sizeof *v->text), v->len = calloc(tk->n, sizeof *v->len);
    v->score = calloc(tk->n, sizeof *v->score), v->type = calloc(tk->n, sizeof *v->type);
    v->sorted = calloc(tk->n, sizeof *v->sorted);
    for (int i = 0; i < v->n; i++) {
        uint64_t l;
        v->text[i] = gguf_kv_str_at(tk, (uint64_t)i, &l);
        v->len[i] = (uint32_t)l;
        memcpy(&v->score[i], sc->value + 4 * (size_t)i, 4);
        memcpy(&v->type[i], ty->value + 4 * (size_t)i, 4);
        v->sorted[i] = i;
    }
    cmp_gv = v;
    qsort(v->sorted, (size_t)v->n, sizeof(int), cmp_ids);
    v->add_prefix = (int)ap->u;
    return 0;
}
static void gv_free(gv *v) { free(v->text), free(v->len), free(v->score), free(v->type), free(v->sorted); }

typedef struct {
    int left, right;
    float score;
    size_t size;
} bigram;
typedef struct {
    const char *text;
    size_t n;
    int prev, next;
} symbol;

/* llama.cpp's order: higher score first, then the leftmost */
static int bg_before(const bigram *a, const bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}
static void heap_push(bigram **h, int *n, int *cap, bigram x) {
    if (*n == *cap) *h = realloc(*h, (size_t)(*cap = *cap * 2 + 64) * sizeof **h);
    int i = (*n)++;
    for (; i > 0 && bg_before(&x, &(*h)[(i - 1) / 2]); i = (i - 1) / 2) (*h)[i] = (*h)[(i - 1) / 2];
    (*h)[i] = x;
}
static bigram heap_pop(bigram *h, int *n) {
    bigram top = h[0], x = h[--*n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && bg_before(&h[c + 1], &h[c])) c++;
        if (!bg_before(&h[c], &x)) break;
        h[i] = h[c], i = c;
    }
    if (*n) h[i] = x;
    return top;
}

static void try_bigram(const gv *v, symbol *sym, int l, int r, bigram **h, int *n, int *cap) {
    if (l < 0 || r < 0) return;
    int id = gv_find(v, sym[l].text, sym[l].n + sym[r].n);
    if (id >= 0) heap_push(h, n, cap, (bigram){l, r, v->score[id], sym[l].n + sym[r].n});
}

/* one stretch of text without specials (spaces already ▁) */
static void spm_stretch(const gv *v, const char *s, size_t n, int32_t *out, size_t *no) {
    if (!n) return;
    symbol *sym = malloc(n * sizeof *sym);
    int ns = 0;
    for (size_t o = 0; o < n;) {
        static const size_t lut[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
        size_t k = lut[(uint8_t)s[o] >> 4];
        if (k > n - o) k = n - o;
        sym[ns] = (symbol){s + o, k, ns - 1, o + k == n ? -1 : ns + 1};
        ns++, o += k;
    }
    bigram *h = NULL;
    int hn = 0, hcap = 0;
    for (int i = 1; i < ns; i++) try_bigram(v, sym, i - 1, i, &h, &hn, &hcap);
    while (hn) {
        bigram b = heap_pop(h, &hn);
        symbol *l = &sym[b.left], *r = &sym[b.right];
        if (!l->n || !r->n || l->n + r->n != b.size) continue;
        l->n += r->n, r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        try_bigram(v, sym, l->prev, b.left, &h, &hn, &hcap);
        try_bigram(v, sym, b.left, l->next, &h, &hn, &hcap);
    }
    for (int i = 0; i != -1; i = sym[i].next) {
        int id = gv_find(v, sym[i].text, sym[i].n);
        if (id >= 0) {
            out[(*no)++] = id;
            continue;
        }
        for (size_t k = 0; k < sym[i].n; k++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", (uint8_t)sym[i].text[k]);
            out[(*no)++] = gv_find(v, name, 6);
        }
    }
    free(h), free(sym);
}

/* text -> ids as llama.cpp's llama_tokenize(add_special = false, parse_special = true) on a "llama" vocabulary */
static int32_t *spm_encode(const gv *v, const char *text, size_t n, size_t *nout) {
    /* fragments: [start, len) of text, or a special token (id >= 0) */
    typedef struct {
        size_t start, len;
        int id;
    } frag;
    frag *f = malloc((n + 2) * 2 * sizeof *f), *g = malloc((n + 2) * 2 * sizeof *g);
    int nf = 1;
    f[0] = (frag){0, n, -1};
    int *spec = malloc((size_t)v->n * sizeof *spec), nspec = 0;
    for (int i = 0; i < v->n; i++)
        if (v->type[i] == 2 || v->type[i] == 3 || v->type[i] == 4) spec[nspec++] = i;
    for (int a = 1; a < nspec; a++) /* longest text first (stable: ties keep id order) */
        for (int b = a; b > 0 && v->len[spec[b]] > v->len[spec[b - 1]]; b--) {
            int x = spec[b];
            spec[b] = spec[b - 1], spec[b - 1] = x;
        }
    for (int k = 0; k < nspec; k++) {
        int id = spec[k], ng = 0;
        size_t tl = v->len[id];
        for (int i = 0; i < nf; i++) {
            if (f[i].id >= 0 || !tl) {
                g[ng++] = f[i];
                continue;
            }
            size_t s = f[i].start, e = f[i].start + f[i].len;
            for (;;) {
                const char *hit = NULL;
                for (size_t p = s; p + tl <= e; p++)
                    if (memcmp(text + p, v->text[id], tl) == 0) {
                        hit = text + p;
                        break;
                    }
                if (!hit) break;
                size_t p = (size_t)(hit - text);
                if (p > s) g[ng++] = (frag){s, p - s, -1};
                g[ng++] = (frag){p, tl, id};
                s = p + tl;
            }
            if (s < e) g[ng++] = (frag){s, e - s, -1};
        }
        frag *t = f;
        f = g, g = t, nf = ng;
    }
    int32_t *out = malloc((n * 3 + 3 * (size_t)nf + 8) * sizeof *out); /* a space can be 3 byte tokens */
    size_t no = 0;
    char *buf = malloc(n * 3 + 8);
    int prev_special = 1;
    for (int i = 0; i < nf; i++) {
        if (f[i].id >= 0) {
            out[no++] = f[i].id, prev_special = 1;
            continue;
        }
        size_t bl = 0;
        if (v->add_prefix && prev_special) memcpy(buf, SPACE, 3), bl = 3;
        for (size_t k = 0; k < f[i].len; k++)
            if (text[f[i].start + k] == ' ') memcpy(buf + bl, SPACE, 3), bl += 3;
            else buf[bl++] = text[f[i].start + k];
        spm_stretch(v, buf, bl, out, &no);
        prev_special = 0;
    }
    free(buf), free(f), free(g), free(spec);
    *nout = no;
    return out;
}

/* ---------------- the checks ---------------- */

static char root_dir[4096];

static char *read_repo_file(const char *rel, size_t *n) {
    char path[4400];
    char *text;
    snprintf(path, sizeof path, "%s/%s", root_dir, rel);
    if (file_read_all(path, &text, n)) return NULL;
    return text;
}

static const char *HARD[] = {
    "", " ", "   ", "x", "  leading and trailing  ", "\t\tif (x) {\r\n\t\treturn -1;\r\n\t}\n\n\n",
    "a<s>b</s> c <unk>d", "<s> <s>  </s>", SPACE "<PRE>def f(x):" SPACE "<SUF>    return y" SPACE "<MID>",
    "naïve café — “quotes” … 日本語のテキスト 😀👍🏽 é Ω ﬁ ½ ¹ Ⅻ ㎏",
    "▁ literal ▁▁ marks ▁", "printf(\"%d\\n\", x);  /* comment */ // another",
    "\x01\x02\x7f control \x1b[0m", "tab\tsep\tvalues\t\t\n  indented\n        deeper",
    "Zürich Straße İstanbul ǅ ǈ ﬀ Ａ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙 𐍈 \xf0\x9f\xa7\x91\xe2\x80\x8d\xf0\x9f\x92\xbb",
};

/* ids of the GGUF (llama.cpp's algorithm) == ids of the tokenizer.json (ours) on the real files and hard texts */
static void compare_ids(const char *label, const char *gguf_path, const sc_tokenizer *t) {
    gguf_file g;
    if (gguf_open(&g, gguf_path)) {
        CHECKF(0, "%s: open %s", label, sc_error());
        return;
    }
    gv v;
    if (gv_load(&v, &g)) {
        CHECKF(0, "%s: tokens/scores/token_type/add_space_prefix missing or mistyped", label);
        gguf_close(&g);
        return;
    }
    static const char *files[] = {"data/tokenizer_bpe.c", "infer/generate.c", "README.md", "docs/tokenizer.md",
                                  "tests/reference/open_models.py", "host/config.c", "docs/open-models.md"};
    int same = 0, total = 0;
    size_t tokens = 0;
    for (size_t k = 0; k < sizeof files / sizeof files[0] + sizeof HARD / sizeof HARD[0]; k++) {
        size_t n;
        char *text;
        if (k < sizeof files / sizeof files[0]) {
            if (!(text = read_repo_file(files[k], &n))) continue;
        } else {
            const char *h = HARD[k - sizeof files / sizeof files[0]];
            n = strlen(h), text = strdup(h);
        }
        int32_t *ours;
        size_t no, ng;
        if (tokenizer_encode(t, text, n, &ours, &no)) {
            CHECKF(0, "%s: encode: %s", label, sc_error());
            free(text);
            continue;
        }
        int32_t *theirs = spm_encode(&v, text, n, &ng);
        total++;
        size_t d = 0;
        while (d < no && d < ng && ours[d] == theirs[d]) d++;
        if (d == no && d == ng) same++;
        else
            CHECKF(0, "%s: text %zu (%zu bytes): ids differ at %zu of %zu/%zu: ours %d, GGUF %d", label, k, n, d, no, ng,
                   d < no ? ours[d] : -1, d < ng ? theirs[d] : -1);
        tokens += no;
        free(ours), free(theirs), free(text);
    }
    printf("%s: GGUF tokenizer ids == tokenizer.json ids on %d/%d texts (%zu tokens)\n", label, same, total, tokens);
    CHECK(total >= (int)(sizeof HARD / sizeof HARD[0]));
    gv_free(&v);
    gguf_close(&g);
}

static void write_model(const char *dir, int V, cJSON *tokenizer) {
    sc_config cfg;
    config_preset(&cfg, "tiny");
    cfg.vocab_size = V;
    cfg.bos_token_id = 1, cfg.eos_token_id = 2;
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 7, 0.05f);
    if (model_save(&m, dir)) printf("save: %s\n", sc_error()), exit(1);
    model_free(&m);
    char *js = cJSON_PrintUnformatted(tokenizer), path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    atomic_write_file(path, js, strlen(js));
    free(js);
}

static void refused(const char *base, const char *what, cJSON *tokenizer, int V, const char *needle) {
    char dir[4200], out[4300];
    snprintf(dir, sizeof dir, "%s/%s", base, what);
    write_model(dir, V, tokenizer);
    snprintf(out, sizeof out, "%s/%s.gguf", base, what);
    CHECK_FAILS_WITH(gguf_export(dir, out, GGML_F16), needle);
    CHECKF(access(out, F_OK) != 0, "%s: a refused export left %s", what, out);
    printf("refused (%s): %s\n", what, sc_error());
}

static cJSON *variant(const cJSON *base) { return cJSON_Duplicate(base, 1); }

int main(void) {
    /* the repository root from this file's path (the build passes sources by absolute path) */
    snprintf(root_dir, sizeof root_dir, "%s", __FILE__);
    char *cut = strstr(root_dir, "/tests/test_infer_gguf_spm.c");
    if (cut) *cut = 0;
    else snprintf(root_dir, sizeof root_dir, "..");
    char base[] = "/tmp/sc_gguf_spm_XXXXXX";
    if (!mkdtemp(base)) return 1;

    /* learn pieces from our own sources (first 24 KB) + a line of non-ASCII text */
    size_t n1 = 0, n2 = 0;
    char *a = read_repo_file("data/tokenizer_bpe.c", &n1), *b = read_repo_file("README.md", &n2);
    char *corpus = malloc(24576 + 16384 + 256);
    snprintf(corpus, 24576 + 16384 + 256, "%.*s%.*s naïve café 日本語 😀 ", (int)(n1 < 24576 ? n1 : 24576),
             a ? a : "static int f(int x) { return x + 1; }\n", (int)(n2 < 16384 ? n2 : 16384), b ? b : "");
    free(a), free(b);
    strlist chars = {0}, pieces = {0};
    learn(corpus, 400, &chars, &pieces);
    free(corpus);
    int V;
    cJSON *tj = sp_tokenizer(&chars, &pieces, &V);
    printf("learned tokenizer: %d characters, %d pieces, %d merges, %d ids\n", chars.n, pieces.n,
           cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(tj, "model"), "merges")), V);

    /* export with 3 padded rows past the tokenizer; read back */
    char dir[4200], out[4300], path[4300];
    snprintf(dir, sizeof dir, "%s/sp", base);
    write_model(dir, V + 3, tj);
    snprintf(out, sizeof out, "%s/sp.gguf", base);
    CHECKF(gguf_export(dir, out, GGML_F16) == 0, "export: %s", sc_error());
    sc_tokenizer *t = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECKF(tokenizer_load(&t, path) == 0, "load: %s", sc_error());
    gguf_file g;
    if (t && gguf_open(&g, out) == 0) {
        const gguf_kv *kv = gguf_find_kv(&g, "tokenizer.ggml.model");
        CHECKF(kv && kv->str && strcmp(kv->str, "llama") == 0, "tokenizer model");
        kv = gguf_find_kv(&g, "tokenizer.ggml.pre");
        CHECKF(kv && kv->str && strcmp(kv->str, "default") == 0, "pre");
        CHECK(gguf_find_kv(&g, "tokenizer.ggml.merges") == NULL); /* LlamaHfVocab writes none */
        const gguf_kv *tk = gguf_find_kv(&g, "tokenizer.ggml.tokens"), *ty = gguf_find_kv(&g, "tokenizer.ggml.token_type");
        const gguf_kv *sc = gguf_find_kv(&g, "tokenizer.ggml.scores");
        CHECKF(tk && ty && sc && tk->n == (uint64_t)V + 3 && ty->n == tk->n && sc->n == tk->n, "array sizes");
        if (tk && ty && sc && ty->n == (uint64_t)V + 3 && sc->n == ty->n) {
            int32_t types[8];
            int ids[8] = {0, 1, 3 + 0x41, tokenizer_token_id(t, pieces.s[0]), tokenizer_token_id(t, pieces.s[5]),
                          tokenizer_token_id(t, SPACE "<PRE>"), V, V + 2};
            int want[8] = {2, 3, 6, 1, 1, 3, 5, 5}; /* unknown, control, byte, normal, normal, control, unused x2 */
            for (int k = 0; k < 8; k++) {
                memcpy(&types[k], ty->value + 4 * (size_t)ids[k], 4);
                CHECKF(types[k] == want[k], "token %d type %d, want %d", ids[k], types[k], want[k]);
            }
            uint64_t l;
            char pad[32];
            const char *s = gguf_kv_str_at(tk, (uint64_t)V + 1, &l);
            snprintf(pad, sizeof pad, "[PAD%d]", V + 1);
            CHECKF(l == strlen(pad) && memcmp(s, pad, l) == 0, "padded token text '%.*s'", (int)l, s);
            s = gguf_kv_str_at(tk, (uint64_t)ids[3], &l);
            CHECKF(l == strlen(pieces.s[0]) && memcmp(s, pieces.s[0], l) == 0, "first piece text");
            /* scores: minus the rank of the piece's first merge; the first piece's is merge 0 */
            float s0, s5, sb;
            memcpy(&s0, sc->value + 4 * (size_t)ids[3], 4), memcpy(&s5, sc->value + 4 * (size_t)ids[4], 4);
            memcpy(&sb, sc->value + 4 * (size_t)ids[2], 4);
            CHECKF(s0 == 0.0f && s5 < -4.0f && sb == 0.0f, "scores %g %g %g", s0, s5, sb);
        }
        static const struct { const char *key; long want; } ids[] = {
            {"tokenizer.ggml.bos_token_id", 1}, {"tokenizer.ggml.eos_token_id", 2},
            {"tokenizer.ggml.unknown_token_id", 0}, {"tokenizer.ggml.add_bos_token", 1},
            {"tokenizer.ggml.add_space_prefix", 1}, {"tokenizer.ggml.add_eos_token", 0},
        };
        for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
            kv = gguf_find_kv(&g, ids[k].key);
            CHECKF(kv && (long)kv->u == ids[k].want, "%s", ids[k].key);
        }
        kv = gguf_find_kv(&g, "tokenizer.ggml.fim_mid_token_id");
        CHECKF(kv && (int)kv->u == tokenizer_token_id(t, SPACE "<MID>"), "fim_mid id");
        kv = gguf_find_kv(&g, "tokenizer.ggml.eot_token_id");
        CHECKF(kv && (int)kv->u == tokenizer_token_id(t, SPACE "<EOT>"), "eot id");
        gguf_close(&g);
    } else CHECKF(0, "open: %s", sc_error());
    if (t) compare_ids("learned (Prepend/Replace)", out, t);
    tokenizer_free(t);

    /* Metaspace(never, split false) instead of the normalizer: no prefix ▁ (add_space_prefix false), same ids */
    cJSON *ms = variant(tj);
    cJSON_ReplaceItemInObject(ms, "normalizer", cJSON_CreateNull());
    cJSON_ReplaceItemInObject(ms, "pre_tokenizer", cJSON_Parse("{\"type\":\"Metaspace\",\"replacement\":\"" SPACE
                                                               "\",\"prepend_scheme\":\"never\",\"split\":false}"));
    snprintf(dir, sizeof dir, "%s/meta", base);
    write_model(dir, V, ms);
    snprintf(out, sizeof out, "%s/meta.gguf", base);
    CHECKF(gguf_export(dir, out, GGML_Q8_0) == 0, "export metaspace: %s", sc_error());
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (tokenizer_load(&t, path) == 0) {
        if (gguf_open(&g, out) == 0) {
            const gguf_kv *kv = gguf_find_kv(&g, "tokenizer.ggml.add_space_prefix");
            CHECKF(kv && kv->u == 0, "Metaspace never: add_space_prefix");
            gguf_close(&g);
        }
        compare_ids("learned (Metaspace never)", out, t);
        tokenizer_free(t);
    }
    cJSON_Delete(ms);

    /* refusals */
    cJSON *r = variant(tj), *mg = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "model"), "merges");
    int victim = -1;
    for (int i = 0; i < cJSON_GetArraySize(mg) && victim < 0; i++) /* a piece with two splits: drop one */
        if (i + 1 < cJSON_GetArraySize(mg)) {
            const char *x = cJSON_GetArrayItem(mg, i)->valuestring, *y = cJSON_GetArrayItem(mg, i + 1)->valuestring;
            char cx[600], cy[600];
            const char *sx = strchr(x, ' '), *sy = strchr(y, ' ');
            snprintf(cx, sizeof cx, "%.*s%s", (int)(sx - x), x, sx + 1);
            snprintf(cy, sizeof cy, "%.*s%s", (int)(sy - y), y, sy + 1);
            if (strcmp(cx, cy) == 0) victim = i;
        }
    CHECKF(victim >= 0, "no piece with two splits was learned");
    if (victim >= 0) {
        cJSON *moved = cJSON_DetachItemFromArray(mg, victim);
        refused(base, "missing-merge", r, V, "are not a merge");
        cJSON_AddItemToArray(mg, moved); /* the same merge, but last: its piece's merges are not consecutive */
        refused(base, "late-merge", r, V, "not consecutive");
    }
    cJSON_Delete(r);
    r = variant(tj);
    cJSON_AddItemToArray(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "normalizer"), "normalizers"),
                         cJSON_Parse("{\"type\":\"NFKC\"}"));
    refused(base, "nfkc", r, V, "normalizer NFKC");
    cJSON_Delete(r);
    r = variant(tj);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "model"), "byte_fallback", cJSON_CreateFalse());
    refused(base, "no-byte-fallback", r, V, "without byte_fallback");
    cJSON_Delete(r);
    r = variant(tj);
    cJSON_ReplaceItemInObject(r, "normalizer", cJSON_CreateNull());
    cJSON_ReplaceItemInObject(r, "pre_tokenizer", cJSON_Parse("{\"type\":\"Metaspace\",\"replacement\":\"" SPACE
                                                              "\",\"prepend_scheme\":\"always\",\"split\":true}"));
    refused(base, "metaspace-split", r, V, "Metaspace with split");
    cJSON_Delete(r);
    r = variant(tj);
    cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "model"), "vocab");
    cJSON_DeleteItemFromObject(vocab, "<0x7F>");
    cJSON_AddNumberToObject(vocab, "<0x7F>x", 3 + 0x7f);
    refused(base, "no-byte-token", r, V, "byte token <0x7F> is missing");
    cJSON_Delete(r);
    r = variant(tj); /* a token with a character that is none: HF spells its bytes, llama.cpp would join q + ☃ */
    cJSON_AddNumberToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "model"), "vocab"), "q\xe2\x98\x83", V);
    refused(base, "char-not-token", r, V + 1, "are not a merge");
    cJSON_Delete(r);

    /* the published 32000-token Llama-2-style tokenizer.json, when tokenizer_hf_published fetched it */
    const char *pub = getenv("SC_PUBLISHED_LLAMA2");
    char pubpath[4200];
    snprintf(pubpath, sizeof pubpath, "%s", pub ? pub : "../npm/published/llama2/tokenizer.json");
    char *js;
    size_t jn;
    if (access(pubpath, R_OK) == 0 && file_read_all(pubpath, &js, &jn) == 0) {
        cJSON *pj = cJSON_ParseWithLength(js, jn);
        free(js);
        snprintf(dir, sizeof dir, "%s/published", base);
        write_model(dir, 32000, pj);
        cJSON_Delete(pj);
        snprintf(out, sizeof out, "%s/published.gguf", base);
        CHECKF(gguf_export(dir, out, GGML_Q8_0) == 0, "export published: %s", sc_error());
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        if (tokenizer_load(&t, path) == 0) {
            compare_ids("published llama2 (32000)", out, t);
            tokenizer_free(t);
        }
    } else
        printf("published llama2 tokenizer.json not found at %s (tokenizer_hf_published fetches it): not compared\n",
               pubpath);

    cJSON_Delete(tj);
    for (int i = 0; i < chars.n; i++) free(chars.s[i]);
    for (int i = 0; i < pieces.n; i++) free(pieces.s[i]);
    free(chars.s), free(pieces.s);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (system(cmd) != 0) printf("could not remove %s\n", base);
    return check_result("test_infer_gguf_spm");
}
