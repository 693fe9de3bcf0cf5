/* test_fim.c — the FIM transform: exact PSM/SPM layouts; token-level output is the input reordered (minus the
 * truncated tail) with exactly one of each sentinel per transformed document; character-level splits never
 * cut a UTF-8 character and reassemble to the original text; padding when re-encoding shrinks a document;
 * determinism in the key; rates close to the requested ones. Uses toy codecs, so no tokenizer is needed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"
#include "host/error.h"
#include "data/fim.h"
#include "host/rng.h"
#include "data/utf8.h"

enum { EOT = 1, PRE = 2, MID = 3, SUF = 4, PAD = 5, BASE = 10 };
static const fim_tokens IDS = {PRE, MID, SUF, PAD, EOT};

static int is_sentinel(int32_t t) { return t == PRE || t == MID || t == SUF || t == PAD; }

static void test_layout(void) {
    int32_t pre[2] = {20, 21}, mid[1] = {30}, suf[3] = {40, 41, 42}, out[16];
    int32_t psm[] = {PRE, 20, 21, SUF, 40, 41, 42, PAD, MID, 30};
    int32_t spm[] = {PRE, SUF, 40, 41, 42, PAD, MID, 20, 21, 30};
    CHECK(fim_layout(&IDS, 0, pre, 2, mid, 1, suf, 3, 1, out) == 10 && memcmp(out, psm, sizeof psm) == 0);
    CHECK(fim_layout(&IDS, 1, pre, 2, mid, 1, suf, 3, 1, out) == 10 && memcmp(out, spm, sizeof spm) == 0);
}

/* Splits a transformed document back into prefix/middle/suffix (pads dropped). Returns 0 if the layout is not
 * exactly one of each sentinel in PSM or SPM order. */
static int unlayout(const int32_t *d, size_t n, int32_t *re, size_t *nre, size_t *npad, int *spm) {
    size_t ip = n, is = n, im = n, cp = 0, cs = 0, cm = 0;
    *npad = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] == PRE) ip = i, cp++;
        if (d[i] == SUF) is = i, cs++;
        if (d[i] == MID) im = i, cm++;
        if (d[i] == PAD) (*npad)++;
    }
    if (cp != 1 || cs != 1 || cm != 1 || ip != 0 || !(is < im)) return 0;
    *spm = is == 1;
    size_t k = 0;
    /* reassemble prefix + middle + suffix in document order */
    if (*spm) {
        for (size_t i = im + 1; i < n; i++) re[k++] = d[i];          /* prefix + middle */
        for (size_t i = is + 1; i < im; i++) if (d[i] != PAD) re[k++] = d[i];
    } else {
        for (size_t i = 1; i < is; i++) re[k++] = d[i];              /* prefix */
        for (size_t i = im + 1; i < n; i++) re[k++] = d[i];          /* middle */
        for (size_t i = is + 1; i < im; i++) if (d[i] != PAD) re[k++] = d[i];
    }
    *nre = k;
    return 1;
}

static int cmp_i32(const void *a, const void *b) { return (*(const int32_t *)a > *(const int32_t *)b) - (*(const int32_t *)a < *(const int32_t *)b); }

/* Random window: documents of normal tokens separated by EOT, sometimes starting/ending mid-document. */
static size_t make_window(sc_rng *r, int32_t *w, size_t n) {
    for (size_t i = 0; i < n; i++) w[i] = rng_below(r, 150) == 0 ? EOT : (int32_t)(BASE + rng_below(r, 1000));
    return n;
}

static void test_token_level(void) {
    fim_options o;
    fim_options_default(&o, IDS);
    o.rate = 1.0f;
    o.split = FIM_SPLIT_TOKEN;
    CHECK(fim_options_check(&o) == 0);
    sc_rng r;
    rng_seed(&r, 7);
    fim_stats st = {0};
    int bad_layout = 0, bad_order = 0, bad_multiset = 0, bad_len = 0, bad_eot = 0;
    double expect_short = 0;  /* sum over documents of P(suffix <= 3 tokens) = 1 - ((n-3)/(n+1))^2 */
    size_t n = 333;
    int32_t *orig = malloc(n * sizeof *orig), *w = malloc(n * sizeof *w), *re = malloc(n * sizeof *re);
    int32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    for (int t = 0; t < 300; t++) {
        make_window(&r, orig, n);
        memcpy(w, orig, n * sizeof *w);
        CHECK(fim_apply(&o, w, n, (uint64_t)t, &st) == 0);
        size_t s = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && orig[i] != EOT) continue;
            if (i < n && w[i] != EOT) bad_eot++;  /* document boundaries stay where they were */
            size_t len = i - s;
            if (len > 0) expect_short += len <= 3 ? 1.0 : 1.0 - ((double)(len - 3) / (len + 1)) * ((double)(len - 3) / (len + 1));
            if (len > 0 && memcmp(w + s, orig + s, len * sizeof *w) != 0) {
                size_t nre, npad;
                int spm;
                if (!unlayout(w + s, len, re, &nre, &npad, &spm)) bad_layout++;
                else {
                    if (npad != 0 || nre != len - 3) bad_len++;
                    /* order: prefix + middle + suffix is the document minus its last 3 tokens (the truncation) */
                    if (memcmp(re, orig + s, nre * sizeof *re) != 0) bad_order++;
                    /* the brief's property, checked literally: output minus sentinels is a permutation */
                    size_t k = 0;
                    for (size_t q = 0; q < len; q++) if (!is_sentinel(w[s + q])) a[k++] = w[s + q];
                    memcpy(b, orig + s, (len - 3) * sizeof *b);
                    qsort(a, k, sizeof *a, cmp_i32);
                    qsort(b, len - 3, sizeof *b, cmp_i32);
                    if (k != len - 3 || memcmp(a, b, k * sizeof *a) != 0) bad_multiset++;
                }
            }
            s = i + 1;
        }
    }
    CHECK(bad_layout == 0 && bad_order == 0 && bad_multiset == 0 && bad_len == 0 && bad_eot == 0);
    if (bad_layout || bad_order || bad_multiset || bad_len || bad_eot)
        fprintf(stderr, "layout %d order %d multiset %d len %d eot %d\n", bad_layout, bad_order, bad_multiset, bad_len, bad_eot);
    /* rate 1: every document is transformed unless its suffix is too short to absorb the 3 sentinels */
    CHECK(st.transformed + st.too_short == st.documents && st.documents > 500);
    fprintf(stderr, "token level: %llu documents, %llu transformed, %llu too short (expected %.0f)\n", (unsigned long long)st.documents,
            (unsigned long long)st.transformed, (unsigned long long)st.too_short, expect_short);
    /* a suffix shorter than the 3 sentinels cannot absorb them: StarCoder then leaves the document alone */
    CHECK(fabs((double)st.too_short - expect_short) < 4 * sqrt(expect_short) + 1);
    CHECK(st.spm > st.transformed * 4 / 10 && st.spm < st.transformed * 6 / 10);
    free(orig), free(w), free(re), free(a), free(b);
}

static void test_rate_and_determinism(void) {
    fim_options o;
    fim_options_default(&o, IDS);
    o.split = FIM_SPLIT_TOKEN;  /* rate 0.5 */
    sc_rng r;
    rng_seed(&r, 99);
    size_t n = 512;
    int32_t *orig = malloc(n * sizeof *orig), *w1 = malloc(n * sizeof *w1), *w2 = malloc(n * sizeof *w2);
    fim_stats st = {0};
    int differ_by_key = 0;
    for (int t = 0; t < 200; t++) {
        make_window(&r, orig, n);
        memcpy(w1, orig, n * sizeof *w1);
        memcpy(w2, orig, n * sizeof *w2);
        fim_apply(&o, w1, n, 1000 + (uint64_t)t, &st);
        fim_apply(&o, w2, n, 1000 + (uint64_t)t, NULL);
        CHECK(memcmp(w1, w2, n * sizeof *w1) == 0);
        memcpy(w2, orig, n * sizeof *w2);
        fim_apply(&o, w2, n, 5000 + (uint64_t)t, NULL);
        differ_by_key += memcmp(w1, w2, n * sizeof *w1) != 0;
    }
    CHECK(differ_by_key > 190);
    double frac = (double)(st.transformed + st.too_short) / (double)st.documents;
    CHECK(frac > 0.45 && frac < 0.55);
    o.rate = 0;
    memcpy(w1, orig, n * sizeof *w1);
    CHECK(fim_apply(&o, w1, n, 1, NULL) == 0 && memcmp(w1, orig, n * sizeof *w1) == 0);
    free(orig), free(w1), free(w2);
}

/* ---- character level, with toy codecs ---- */

/* byte codec: one token per byte (id = BASE + byte) */
static int byte_decode(void *ctx, const int32_t *ids, size_t n, char **text, size_t *len) {
    (void)ctx;
    *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < BASE || ids[i] >= BASE + 256) return sc_fail("byte codec: id %d", ids[i]);
        (*text)[i] = (char)(ids[i] - BASE);
    }
    (*text)[n] = 0;
    *len = n;
    return 0;
}
static int byte_encode(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n) {
    (void)ctx;
    *ids = malloc((len ? len : 1) * sizeof **ids);
    for (size_t i = 0; i < len; i++) (*ids)[i] = BASE + (unsigned char)text[i];
    *n = len;
    return 0;
}
/* pair codec: decodes bytes and pairs; encodes greedily two bytes per token (id = BASE + 256 + b0*256 + b1),
 * so re-encoding a byte-tokenised document roughly halves it and the suffix must be padded */
static int pair_decode(void *ctx, const int32_t *ids, size_t n, char **text, size_t *len) {
    (void)ctx;
    *text = malloc(2 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t t = ids[i] - BASE;
        if (t < 256) (*text)[k++] = (char)t;
        else (*text)[k++] = (char)((t - 256) >> 8), (*text)[k++] = (char)((t - 256) & 255);
    }
    (*text)[k] = 0;
    *len = k;
    return 0;
}
static int pair_encode(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n) {
    (void)ctx;
    const unsigned char *s = (const unsigned char *)text;
    *ids = malloc((len ? len : 1) * sizeof **ids);
    size_t k = 0;
    for (size_t i = 0; i < len; i += 2)
        (*ids)[k++] = i + 1 < len ? BASE + 256 + s[i] * 256 + s[i + 1] : BASE + s[i];
    *n = k;
    return 0;
}

static const char *SAMPLES[] = {"def naïve_ƒ(x):\n    return x·2  # 日本語 ✓ 🎉\n", "int main() { return 0; }\n",
                                "café ☕ \t\r\n«ελληνικά» 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 — end"};

/* Builds a window of byte tokens from random sample documents separated by EOT. */
static size_t make_text_window(sc_rng *r, int32_t *w, size_t cap) {
    size_t k = 0;
    while (k < cap) {
        const char *s = SAMPLES[rng_below(r, 3)];
        size_t reps = 1 + rng_below(r, 4);
        for (size_t q = 0; q < reps; q++)
            for (const char *p = s; *p && k < cap; p++) w[k++] = BASE + (unsigned char)*p;
        if (k < cap) w[k++] = EOT;
    }
    return cap;
}

static void test_char_level(int pair) {
    fim_options o;
    fim_options_default(&o, IDS);
    o.rate = 1.0f;
    o.codec.decode = pair ? pair_decode : byte_decode;
    o.codec.encode = pair ? pair_encode : byte_encode;
    CHECK(fim_options_check(&o) == 0);
    sc_rng r;
    rng_seed(&r, pair ? 3 : 4);
    size_t n = 400;
    int32_t *orig = malloc(n * sizeof *orig), *w = malloc(n * sizeof *w), *re = malloc(n * sizeof *re);
    fim_stats st = {0};
    int bad = 0, bad_utf8 = 0, pads = 0;
    for (int t = 0; t < 200; t++) {
        make_text_window(&r, orig, n);
        memcpy(w, orig, n * sizeof *w);
        CHECK(fim_apply(&o, w, n, (uint64_t)t, &st) == 0);
        size_t s = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && orig[i] != EOT) continue;
            size_t len = i - s, nre, npad;
            int spm;
            if (len > 0 && memcmp(w + s, orig + s, len * sizeof *w) != 0) {
                if (!unlayout(w + s, len, re, &nre, &npad, &spm)) {
                    bad++;
                } else {
                    char *a, *b;
                    size_t la, lb;
                    o.codec.decode(NULL, orig + s, len, &a, &la);
                    o.codec.decode(NULL, re, nre, &b, &lb);
                    /* reassembled text is the original when the suffix was padded, else its start; the byte
                     * codec never pads and loses exactly the 3 tokens the sentinels took */
                    if (lb > la || memcmp(a, b, lb) != 0 || (npad > 0 && lb != la) || (!pair && lb != la - 3)) bad++;
                    pads += (int)npad;
                    free(a), free(b);
                    /* the pieces that were not truncated decode to valid UTF-8: no split point cut a character
                     * (PSM: prefix and middle, SPM: prefix+middle; the suffix too when it was padded) */
                    const int32_t *d = w + s;
                    size_t is = 0, im = 0;
                    for (size_t q = 0; q < len; q++) {
                        if (d[q] == SUF) is = q;
                        if (d[q] == MID) im = q;
                    }
                    size_t ranges[3][2] = {{spm ? im + 1 : 1, spm ? len : is}, {spm ? 0 : im + 1, spm ? 0 : len},
                                           {npad ? is + 1 : 0, npad ? im - npad : 0}};
                    for (int p = 0; p < 3; p++) {
                        char *piece;
                        size_t lp;
                        o.codec.decode(NULL, d + ranges[p][0], ranges[p][1] - ranges[p][0], &piece, &lp);
                        if (utf8_valid_prefix(piece, lp) != lp) bad_utf8++;
                        free(piece);
                    }
                }
            }
            s = i + 1;
        }
    }
    CHECK(bad == 0);
    CHECK(bad_utf8 == 0);
    if (bad || bad_utf8) fprintf(stderr, "char-level %s codec: %d bad reassemblies, %d cut characters\n", pair ? "pair" : "byte", bad, bad_utf8);
    CHECK(st.transformed > 300);
    CHECK(pair ? pads > 1000 : pads == 0);
    /* a window cut inside a character: left alone and counted */
    int32_t cut[6] = {BASE + 0xA9, BASE + 'a', BASE + 'b', BASE + 'c', BASE + 'd', BASE + 'e'};  /* starts with a continuation byte */
    int32_t keep[6];
    memcpy(keep, cut, sizeof cut);
    fim_stats st2 = {0};
    CHECK(fim_apply(&o, cut, 6, 1, &st2) == 0 && st2.not_utf8 == 1 && memcmp(cut, keep, sizeof cut) == 0);
    free(orig), free(w), free(re);
}

static void test_options(void) {
    fim_options o;
    fim_options_default(&o, IDS);
    CHECK_FAILS_WITH(fim_options_check(&o), "tokenizer");      /* character level without a codec */
    o.split = FIM_SPLIT_TOKEN;
    o.ids.middle = -1;
    CHECK_FAILS_WITH(fim_options_check(&o), "<fim_middle>");
    o.ids.middle = PRE;
    CHECK_FAILS_WITH(fim_options_check(&o), "same id");
    o.ids.middle = MID;
    o.rate = 1.5f;
    CHECK_FAILS_WITH(fim_options_check(&o), "rate");
}

/* Families with a BOS (Llama, DeepSeek-Coder: tokenize opens each document with it) keep it in front of the
 * transformed document, so training sees <bos> <fim_prefix>... as the prompt is built; families without a pad
 * token (DeepSeek-Coder, CodeLlama) leave a document that re-encodes shorter unchanged instead of padding it. */
enum { BOS = 6 };
static void test_bos_and_no_pad(void) {
    fim_options o;
    fim_options_default(&o, IDS);
    o.rate = 1.0f, o.split = FIM_SPLIT_TOKEN, o.bos = BOS;
    CHECK(fim_options_check(&o) == 0);
    int32_t w[40], orig[40];
    for (int i = 0; i < 40; i++) w[i] = BASE + i;
    w[0] = BOS, w[15] = EOT, w[16] = BOS, w[31] = EOT; /* two whole documents, then one cut by the window's end */
    memcpy(orig, w, sizeof w);
    fim_stats st = {0};
    int bad = 0;
    for (uint64_t key = 0; key < 50; key++) {
        memcpy(w, orig, sizeof w);
        CHECK(fim_apply(&o, w, 40, key, &st) == 0);
        int nbos = 0;
        for (int i = 0; i < 40; i++) nbos += w[i] == BOS;
        /* each document: the BOS where it was, then <fim_prefix> or the document unchanged */
        bad += nbos != 2 || w[0] != BOS || w[16] != BOS || w[15] != EOT || w[31] != EOT;
        bad += w[1] != PRE && memcmp(w + 1, orig + 1, 14 * sizeof *w) != 0;
        bad += w[17] != PRE && memcmp(w + 17, orig + 17, 14 * sizeof *w) != 0;
        bad += w[32] != PRE && memcmp(w + 32, orig + 32, 8 * sizeof *w) != 0;
    }
    CHECKF(bad == 0 && st.documents == 150 && st.transformed > 40, "bad %d, documents %llu, transformed %llu", bad,
           (unsigned long long)st.documents, (unsigned long long)st.transformed);
    o.bos = PRE;
    CHECK_FAILS_WITH(fim_options_check(&o), "same id");

    /* no pad: the pair codec re-encodes every document shorter, so nothing may be transformed */
    fim_options_default(&o, IDS);
    o.ids.pad = -1;
    o.rate = 1.0f;
    o.codec.decode = pair_decode, o.codec.encode = pair_encode;
    CHECK(fim_options_check(&o) == 0);
    sc_rng r;
    rng_seed(&r, 9);
    int32_t tw[300], keep[300];
    fim_stats st2 = {0};
    for (int t = 0; t < 20; t++) {
        make_text_window(&r, tw, 300);
        memcpy(keep, tw, sizeof tw);
        CHECK(fim_apply(&o, tw, 300, (uint64_t)t, &st2) == 0);
        CHECK(memcmp(tw, keep, sizeof tw) == 0);
    }
    CHECK(st2.transformed == 0 && st2.too_short + st2.not_utf8 == st2.documents && st2.documents > 20);
    /* the byte codec re-encodes longer: transformed without a pad token, none written */
    o.codec.decode = byte_decode, o.codec.encode = byte_encode;
    fim_stats st3 = {0};
    make_text_window(&r, tw, 300);
    CHECK(fim_apply(&o, tw, 300, 1, &st3) == 0 && st3.transformed > 0);
}

int main(void) {
    test_layout();
    test_bos_and_no_pad();
    test_token_level();
    test_rate_and_determinism();
    test_char_level(0);
    test_char_level(1);
    test_options();
    return check_result("test_fim");
}
