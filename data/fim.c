/* fim.c — the fill-in-the-middle transform of a training window (see fim.h for the recipe and the choice of
 * character-level splitting). Every random draw comes from an sc_rng seeded by the caller's key, in a fixed
 * order per document, so the output is a pure function of (window, key, options). */
#include "data/fim.h"

#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/rng.h"
#include "data/utf8.h"

void fim_options_default(fim_options *o, fim_tokens ids) {
    memset(o, 0, sizeof *o);
    o->rate = 0.5f;
    o->spm_rate = 0.5f;
    o->split = FIM_SPLIT_CHAR;
    o->ids = ids;
    o->bos = -1;
}

int fim_options_check(const fim_options *o) {
    if (!(o->rate >= 0 && o->rate <= 1)) return sc_fail("fim rate %g is not in [0, 1]", o->rate);
    if (!(o->spm_rate >= 0 && o->spm_rate <= 1)) return sc_fail("fim spm rate %g is not in [0, 1]", o->spm_rate);
    if (o->rate == 0) return 0;
    const int32_t t[6] = {o->ids.prefix, o->ids.middle, o->ids.suffix, o->ids.eot, o->ids.pad, o->bos};
    static const char *names[6] = {"<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<|endoftext|>", "<fim_pad>", "BOS"};
    for (int i = 0; i < 6; i++) {
        if (t[i] < 0) {
            if (i >= 4) continue; /* pad and BOS are optional */
            return sc_fail("FIM needs the special token %s, which the tokenizer lacks", names[i]);
        }
        for (int j = 0; j < i; j++)
            if (t[i] == t[j]) return sc_fail("FIM tokens %s and %s have the same id %d", names[j], names[i], t[i]);
    }
    if (o->split == FIM_SPLIT_CHAR && (!o->codec.decode || !o->codec.encode))
        return sc_fail("character-level FIM needs the tokenizer to decode and re-encode documents");
    return 0;
}

/* memcpy with a NULL source is undefined even for 0 bytes, and empty pieces are NULL */
static size_t put(int32_t *out, const int32_t *src, size_t n) {
    if (n) memcpy(out, src, n * sizeof *out);
    return n;
}

size_t fim_layout(const fim_tokens *t, int spm, const int32_t *pre, size_t npre, const int32_t *mid, size_t nmid,
                  const int32_t *suf, size_t nsuf, size_t npad, int32_t *out) {
    size_t k = 0;
    out[k++] = t->prefix;
    if (spm) {
        out[k++] = t->suffix;
        k += put(out + k, suf, nsuf);
        for (size_t i = 0; i < npad; i++) out[k++] = t->pad;
        out[k++] = t->middle;
        k += put(out + k, pre, npre);
        k += put(out + k, mid, nmid);
    } else {
        k += put(out + k, pre, npre);
        out[k++] = t->suffix;
        k += put(out + k, suf, nsuf);
        for (size_t i = 0; i < npad; i++) out[k++] = t->pad;
        out[k++] = t->middle;
        k += put(out + k, mid, nmid);
    }
    return k;
}

/* Fits the pieces into exactly n ids (truncating or padding the suffix) and writes them over doc.
 * Returns 1 when done, 0 when the suffix is too short to absorb the growth (doc untouched). */
static int fit_and_write(const fim_options *o, int spm, int32_t *doc, size_t n, const int32_t *pre, size_t npre,
                         const int32_t *mid, size_t nmid, const int32_t *suf, size_t nsuf, int32_t *scratch) {
    size_t total = npre + nmid + nsuf + 3, npad = 0;
    if (total > n) {
        size_t diff = total - n;
        if (nsuf <= diff) return 0;
        nsuf -= diff;
    } else {
        npad = n - total;
        if (npad && o->ids.pad < 0) return 0; /* no pad token to fill with */
    }
    size_t k = fim_layout(&o->ids, spm, pre, npre, mid, nmid, suf, nsuf, npad, scratch);
    memcpy(doc, scratch, k * sizeof *doc);
    return 1;
}

/* Token-level: split points between tokens, pieces are slices of doc. */
static int transform_tokens(const fim_options *o, int32_t *doc, size_t n, sc_rng *r, fim_stats *st, int32_t *scratch) {
    size_t a = (size_t)rng_below(r, n + 1), b = (size_t)rng_below(r, n + 1);
    int spm = rng_uniform(r) < o->spm_rate;
    if (a > b) { size_t t = a; a = b; b = t; }
    int32_t *copy = scratch + n + 3;  /* the pieces must not alias the output */
    memcpy(copy, doc, n * sizeof *doc);
    if (!fit_and_write(o, spm, doc, n, copy, a, copy + a, b - a, copy + b, n - b, scratch)) {
        st->too_short++;
        return 0;
    }
    st->transformed++, st->spm += spm;
    return 0;
}

/* Byte offset of the k-th character of text (k == number of characters gives len). */
static size_t char_offset(const char *text, size_t len, size_t k) {
    size_t seen = 0;
    for (size_t i = 0; i < len; i++)
        if (utf8_is_char_start((unsigned char)text[i]) && seen++ == k) return i;
    return len;
}

/* Character-level: decode, split at character boundaries, re-encode the three pieces. */
static int transform_chars(const fim_options *o, int32_t *doc, size_t n, sc_rng *r, fim_stats *st, int32_t *scratch) {
    char *text = NULL;
    size_t len = 0;
    int32_t *piece[3] = {NULL, NULL, NULL};
    size_t np[3] = {0, 0, 0};
    int rc = -1;
    if (o->codec.decode(o->codec.ctx, doc, n, &text, &len)) goto done;
    size_t nchars = 0;
    for (size_t i = 0; i < len; i++) nchars += utf8_is_char_start((unsigned char)text[i]);
    size_t a = (size_t)rng_below(r, nchars + 1), b = (size_t)rng_below(r, nchars + 1);
    int spm = rng_uniform(r) < o->spm_rate;
    if (a > b) { size_t t = a; a = b; b = t; }
    if (utf8_valid_prefix(text, len) != len) {  /* a window edge cut a character: pieces would not re-encode */
        st->not_utf8++;
        rc = 0;
        goto done;
    }
    size_t cut[4] = {0, char_offset(text, len, a), char_offset(text, len, b), len};
    for (int p = 0; p < 3; p++)
        if (cut[p + 1] > cut[p] && o->codec.encode(o->codec.ctx, text + cut[p], cut[p + 1] - cut[p], &piece[p], &np[p]))
            goto done;
    /* fit_and_write emits exactly n ids, so scratch (>= 2n + 6) always suffices */
    if (fit_and_write(o, spm, doc, n, piece[0], np[0], piece[1], np[1], piece[2], np[2], scratch))
        st->transformed++, st->spm += spm;
    else
        st->too_short++;
    rc = 0;
done:
    free(text);
    for (int p = 0; p < 3; p++) free(piece[p]);
    return rc;
}

int fim_apply(const fim_options *o, int32_t *window, size_t n, uint64_t key, fim_stats *stats) {
    fim_stats local = {0};
    fim_stats *st = stats ? stats : &local;
    if (o->rate <= 0 || n == 0) return 0;
    sc_rng r;
    rng_seed(&r, key);
    int32_t *scratch = sc_malloc((2 * n + 6) * sizeof *scratch);
    int rc = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n && rc == 0; i++) {
        if (i < n && window[i] != o->ids.eot) continue;
        if (o->bos >= 0 && start < i && window[start] == o->bos) start++; /* the BOS stays where it is */
        size_t len = i - start;
        if (len > 0) {
            st->documents++;
            if (rng_uniform(&r) < o->rate)
                rc = o->split == FIM_SPLIT_TOKEN ? transform_tokens(o, window + start, len, &r, st, scratch)
                                                 : transform_chars(o, window + start, len, &r, st, scratch);
        }
        start = i + 1;
    }
    free(scratch);
    return rc;
}
