/* tokenizer_pretok.c — the pre-tokenizer pipeline of an HF tokenizer.json run with PCRE2: Split(regex or
 * string, with HF's five delimiter behaviours), Digits, ByteLevel (prefix space + the GPT-2 regex) and Metaspace
 * (spaces -> "▁", the prefix, split before each "▁"). The
 * regexes in tokenizer.json are Oniguruma syntax; pretok_translate rewrites the few escapes whose meaning
 * differs in PCRE2 so both engines split the same way. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "data/tokenizer_internal.h"

const char *const TOK_GPT2_PATTERN =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Oniguruma's \s is Unicode White_Space. PCRE2's UCP \s is \p{Z} plus \h and \v, which also contains
 * U+180E (MONGOLIAN VOWEL SEPARATOR, no longer White_Space since Unicode 6.3); spell the set out. */
#define WS_MEMBERS "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
/* In Ruby syntax (Oniguruma's default) \h is a hex digit, not horizontal space. */
#define HEX_MEMBERS "0-9a-fA-F"

void tok_buf_add(byte_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap) cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) sc_malloc((size_t)-1);
        b->buf = nb;
        b->cap = cap;
    }
    if (s) memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

#define buf_add tok_buf_add
static void buf_str(byte_buf *b, const char *s) { buf_add(b, s, strlen(s)); }

/* ---- Unicode categories: PCRE2's table (Debian: Unicode 14) is older than HF's, so \p{X} gets the code
 * points HF files under X that PCRE2 does not, from the generated tokenizer_unicode.c ---- */

static pthread_mutex_t extras_mu = PTHREAD_MUTEX_INITIALIZER;
static char *extras_cache[64];

/* "\x{a}-\x{b}..." for the code points of category c (index k) that PCRE2's \p{name} misses. */
static const char *unicode_extras(int k) {
    pthread_mutex_lock(&extras_mu);
    if (extras_cache[k]) {
        pthread_mutex_unlock(&extras_mu);
        return extras_cache[k];
    }
    const tok_unicode_category *c = &tok_unicode_categories[k];
    /* one string of every member, scanned once for what PCRE2 calls \P{name} */
    byte_buf text = {0}, out = {0};
    char u[4];
    for (int i = 0; i < c->n; i++)
        for (uint32_t cp = c->ranges[i].lo; cp <= c->ranges[i].hi; cp++) buf_add(&text, u, (size_t)tok_utf8_encode(cp, u));
    char pat[32];
    snprintf(pat, sizeof pat, "\\P{%s}+", c->name);
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    uint32_t lo = 0, hi = 0;
    int have = 0;
    buf_add(&out, "", 0);
    if (re && md) {
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
        size_t at = 0;
        /* the text is valid UTF-8 by construction: checking it on every call would make this quadratic */
        while (at < text.len &&
               pcre2_match(re, (PCRE2_SPTR)text.buf, text.len, at, PCRE2_NO_UTF_CHECK, md, NULL) > 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            for (size_t i = ov[0]; i < ov[1];) {
                uint32_t cp;
                int l = tok_utf8_decode((const uint8_t *)text.buf + i, ov[1] - i, &cp);
                i += (size_t)(l ? l : 1);
                if (have && cp == hi + 1) {
                    hi = cp;
                    continue;
                }
                if (have) {
                    char r[48];
                    snprintf(r, sizeof r, lo == hi ? "\\x{%x}" : "\\x{%x}-\\x{%x}", lo, hi);
                    buf_str(&out, r);
                }
                lo = hi = cp, have = 1;
            }
            at = ov[1] > at ? ov[1] : at + 1;
        }
        if (have) {
            char r[48];
            snprintf(r, sizeof r, lo == hi ? "\\x{%x}" : "\\x{%x}-\\x{%x}", lo, hi);
            buf_str(&out, r);
        }
    }
    if (md) pcre2_match_data_free(md);
    if (re) pcre2_code_free(re);
    free(text.buf);
    extras_cache[k] = out.buf;
    pthread_mutex_unlock(&extras_mu);
    return out.buf;
}

static int unicode_category(const char *name, size_t n) {
    for (int k = 0; tok_unicode_categories[k].name && k < 64; k++)
        if (strlen(tok_unicode_categories[k].name) == n && memcmp(tok_unicode_categories[k].name, name, n) == 0) return k;
    return -1;
}

/* Appends \p{name} plus the extras (inside a class, or as a class of its own). */
static void add_category(byte_buf *out, const char *name, int k, int in_class, int negated) {
    const char *extra = k >= 0 ? unicode_extras(k) : "";
    char p[48];
    snprintf(p, sizeof p, "\\p{%s}", name);
    if (!*extra) {
        if (negated) p[1] = 'P';
        buf_str(out, p);
        return;
    }
    if (!in_class) buf_str(out, negated ? "[^" : "[");
    buf_str(out, p);
    buf_str(out, extra);
    if (!in_class) buf_str(out, "]");
}

/* Rewrites an Oniguruma pattern into PCRE2 syntax with the same meaning. */
static int pretok_translate(const char *p, size_t n, byte_buf *out) {
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[i + 1];
            int inside = in_class != 0;
            if (in_class) in_class = 1;
            if (e == 'p' || e == 'P') { /* \pL, \p{Lu}, \P{N}, \p{^L} */
                const char *name = p + i + 2;
                size_t len = 1, skip = 1;
                int negated = e == 'P';
                if (i + 2 < n && p[i + 2] == '{') {
                    const char *end = memchr(p + i + 3, '}', n - i - 3);
                    if (!end) return sc_fail("regex '%.*s': unterminated \\p{", (int)n, p);
                    name = p + i + 3, len = (size_t)(end - name), skip = len + 2;
                    if (len && name[0] == '^') negated = !negated, name++, len--;
                } else if (i + 2 >= n) {
                    return sc_fail("regex '%.*s': \\p without a property", (int)n, p);
                }
                int k = unicode_category(name, len);
                char nm[40];
                snprintf(nm, sizeof nm, "%.*s", (int)(len < 32 ? len : 32), name);
                if (k >= 0 && negated && inside && *unicode_extras(k))
                    return sc_fail("regex '%.*s': \\P{%s} inside a character class is not supported", (int)n, p, nm);
                add_category(out, nm, k, inside, negated);
                i += 1 + skip;
                continue;
            }
            int negated = e == 'S' || e == 'W' || e == 'H';
            if (e == 'w' || e == 'W') { /* Oniguruma's \w: Letter, Mark, Decimal_Number, Connector_Punctuation */
                if (negated && inside) return sc_fail("regex '%.*s': \\W inside a character class is not supported", (int)n, p);
                if (!inside) buf_str(out, negated ? "[^" : "[");
                const char *cats[] = {"L", "M", "Nd", "Pc"};
                for (int j = 0; j < 4; j++) add_category(out, cats[j], unicode_category(cats[j], strlen(cats[j])), 1, 0);
                if (!inside) buf_str(out, "]");
                i++;
                continue;
            }
            const char *members = e == 's' || e == 'S' ? WS_MEMBERS : e == 'h' || e == 'H' ? HEX_MEMBERS : NULL;
            if (members && !inside) {
                buf_str(out, negated ? "[^" : "[");
                buf_str(out, members);
                buf_str(out, "]");
            } else if (members && !negated) {
                buf_str(out, members);
            } else if (members) {
                return sc_fail("regex '%.*s': \\%c inside a character class is not supported", (int)n, p, e);
            } else if (e == 'u' && i + 6 <= n) {
                buf_str(out, "\\x{");
                buf_add(out, p + i + 2, 4);
                buf_str(out, "}");
                i += 4;
            } else {
                buf_add(out, p + i, 2);
            }
            i++;
            continue;
        }
        if (in_class) {
            if (c == '[' && i + 1 < n && p[i + 1] == ':') { /* POSIX class [:alpha:] */
                const char *end = strstr(p + i, ":]");
                if (!end || (size_t)(end - p) >= n) return sc_fail("regex '%.*s': unterminated [:", (int)n, p);
                buf_add(out, p + i, (size_t)(end - (p + i)) + 2);
                i = (size_t)(end - p) + 1;
                in_class = 1;
                continue;
            }
            if (c == '[' || (c == '&' && i + 1 < n && p[i + 1] == '&'))
                return sc_fail("regex '%.*s': nested character classes / && are not supported", (int)n, p);
            if (c == ']' && in_class > 1) {
                in_class = 1; /* ']' right after '[' or '[^' is a literal */
                buf_add(out, &c, 1);
                continue;
            }
            in_class = c == ']' ? 0 : 1;
            buf_add(out, &c, 1);
            continue;
        }
        if (c == '[') {
            in_class = 2;
            buf_add(out, &c, 1);
            if (i + 1 < n && p[i + 1] == '^') buf_add(out, &p[++i], 1);
            continue;
        }
        buf_add(out, &c, 1);
    }
    return 0;
}

/* Any non-alphanumeric ASCII character may be escaped in PCRE2; bytes >= 0x80 are UTF-8 literals. */
static void pretok_escape(const char *p, size_t n, byte_buf *out) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            if (c < 0x20 || c == 0x7F) {
                char hex[8];
                snprintf(hex, sizeof hex, "\\x{%x}", c);
                buf_str(out, hex);
                continue;
            }
            buf_add(out, "\\", 1);
        }
        buf_add(out, (const char *)&p[i], 1);
    }
}

int pretok_compile(const char *pattern, size_t len, int literal, pre_step *st) {
    byte_buf pat = {0};
    if (literal) pretok_escape(pattern, len, &pat);
    else if (pretok_translate(pattern, len, &pat)) {
        free(pat.buf);
        return -1;
    }
    if (!pat.buf) buf_add(&pat, "", 0);
    int err;
    PCRE2_SIZE erroff;
    /* MULTILINE: in Oniguruma's Ruby syntax ^ and $ are line anchors. MATCH_INVALID_UTF: input files may hold
     * bytes that are not UTF-8; they are never matched and end up in pieces of their own. */
    st->re = pcre2_compile((PCRE2_SPTR)pat.buf, pat.len,
                           PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | PCRE2_MATCH_INVALID_UTF, &err, &erroff, NULL);
    if (!st->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        int rc = sc_fail("regex '%.*s': %s at offset %zu", (int)len, pattern, (const char *)msg, (size_t)erroff);
        free(pat.buf);
        return rc;
    }
    free(pat.buf);
    st->jit = pcre2_jit_compile(st->re, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

void pretok_step_free(pre_step *st) {
    if (st->re) pcre2_code_free(st->re);
    free(st->desc);
    memset(st, 0, sizeof *st);
}

void pretok_scratch_init(pretok_scratch *s) {
    memset(s, 0, sizeof *s);
    s->md = pcre2_match_data_create(4, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    /* the JIT stack only commits what a match touches; long whitespace runs with (?!\S) need some */
    s->jstack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, NULL);
    if (!s->md || !s->mctx || !s->jstack) sc_malloc((size_t)-1);
    pcre2_jit_stack_assign(s->mctx, NULL, s->jstack);
}

void pretok_scratch_free(pretok_scratch *s) {
    for (int i = 0; i < PRETOK_MAX_STEPS; i++) free(s->prefixed[i].buf);
    free(s->norm[0].buf);
    free(s->norm[1].buf);
    if (s->md) pcre2_match_data_free(s->md);
    if (s->mctx) pcre2_match_context_free(s->mctx);
    if (s->jstack) pcre2_jit_stack_free(s->jstack);
    memset(s, 0, sizeof *s);
}

/* The pipeline streams: every piece a step produces goes straight through the following steps to the
 * callback, so memory does not grow with the input (no lists of pieces, however long the text). */
typedef struct {
    const pre_step *steps;
    int nsteps;
    const char *text; /* the segment run, and whether it starts the input (PRETOK_FIRST, PRETOK_NO_PREFIX) */
    int first;
    pretok_scratch *s;
    tok_piece_fn piece;
    void *arg;
} pt_run;

static int run_step(pt_run *r, int k, const char *p, size_t n);

/* HF NormalizedString::split folds the (gap, match) sequence by behaviour; this is the same fold done as the
 * elements arrive, holding back at most one element. */
typedef struct {
    split_behavior b;
    int have;            /* a pending element */
    size_t ps, pe;
    int pm, prev_m;      /* pending's match flag; the last element's */
} split_fold;

static int fold_push(pt_run *r, int k, const char *p, split_fold *f, size_t s, size_t e, int m) {
    int rc = 0;
    switch (f->b) {
    case SPLIT_ISOLATED:
        return run_step(r, k + 1, p + s, e - s);
    case SPLIT_REMOVED:
        return m ? 0 : run_step(r, k + 1, p + s, e - s);
    case SPLIT_CONTIGUOUS:
        if (f->have && m == f->prev_m) {
            f->pe = e;
        } else {
            if (f->have) rc = run_step(r, k + 1, p + f->ps, f->pe - f->ps);
            f->have = 1, f->ps = s, f->pe = e;
        }
        break;
    case SPLIT_MERGED_PREV:
        if (f->have && m && !f->prev_m) {
            f->pe = e;
        } else {
            if (f->have) rc = run_step(r, k + 1, p + f->ps, f->pe - f->ps);
            f->have = 1, f->ps = s, f->pe = e;
        }
        break;
    case SPLIT_MERGED_NEXT: /* a match joins the non-match right after it */
        if (f->have && f->pm && !m) {
            rc = run_step(r, k + 1, p + f->ps, e - f->ps);
            f->have = 0;
        } else {
            if (f->have) rc = run_step(r, k + 1, p + f->ps, f->pe - f->ps);
            f->have = 1, f->ps = s, f->pe = e, f->pm = m;
        }
        break;
    }
    f->prev_m = m;
    return rc;
}

/* Splits p[0..n) with the step's regex, matches as onig's find_iter yields them (leftmost-first; an empty
 * match right after the previous match is skipped by advancing one character), gaps in between. */
static int split_piece(pt_run *r, int k, const char *p, size_t n) {
    const pre_step *st = &r->steps[k];
    pretok_scratch *s = r->s;
    split_fold f = {st->kind == PRE_BYTELEVEL ? SPLIT_ISOLATED : st->behavior, 0, 0, 0, 0, 0};
    int inv = st->kind == PRE_SPLIT && st->invert;
    size_t last_end = 0, prev = 0, last_match_end = 0;
    int have_last = 0, rc = 0;
    while (last_end <= n && !rc) {
        int m = st->jit ? pcre2_jit_match(st->re, (PCRE2_SPTR)p, n, last_end, 0, s->md, s->mctx)
                        : pcre2_match(st->re, (PCRE2_SPTR)p, n, last_end, 0, s->md, s->mctx);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            return sc_fail("pre-tokenizer regex failed: %s", (const char *)msg);
        }
        /* copied out before any recursion: the match data is shared by all steps */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && have_last && last_match_end == me) {
            uint32_t cp;
            int l = last_end < n ? tok_utf8_decode((const uint8_t *)p + last_end, n - last_end, &cp) : 1;
            last_end += l ? (size_t)l : 1;
            continue;
        }
        last_end = me, last_match_end = me, have_last = 1;
        if (prev != ms) rc = fold_push(r, k, p, &f, prev, ms, inv);
        if (!rc) rc = fold_push(r, k, p, &f, ms, me, !inv);
        prev = me;
    }
    if (!rc && prev != n) rc = fold_push(r, k, p, &f, prev, n, inv);
    if (!rc && f.have) rc = run_step(r, k + 1, p + f.ps, f.pe - f.ps);
    return rc;
}

static int run_step(pt_run *r, int k, const char *p, size_t n) {
    if (!n) return 0; /* HF drops empty splits */
    if (k == r->nsteps) {
        r->piece(r->arg, (const uint8_t *)p, n);
        return 0;
    }
    const pre_step *st = &r->steps[k];
    if (st->kind == PRE_BYTELEVEL && st->add_prefix_space && p[0] != ' ') {
        /* this depth's buffer: deeper steps have their own, and it is free again once this piece is done */
        byte_buf *b = &r->s->prefixed[k];
        b->len = 0;
        buf_add(b, " ", 1);
        buf_add(b, p, n);
        p = b->buf, n++;
    }
    if (st->kind == PRE_METASPACE) {
        /* HF Metaspace: spaces become the replacement, which is prepended (scheme "always", or "first" for the
         * piece that starts the input) unless the piece already starts with it; then split before each one */
        size_t lr = strlen(st->meta_rep);
        int at_start = (r->first & PRETOK_FIRST) && p == r->text;
        int pre = st->meta_prepend == META_ALWAYS || (st->meta_prepend == META_FIRST && at_start);
        if (at_start && (r->first & PRETOK_NO_PREFIX)) pre = 0;
        byte_buf *b = &r->s->prefixed[k];
        b->len = 0;
        buf_add(b, NULL, 0);
        size_t i = 0;
        while (i < n) {
            const char *sp = memchr(p + i, ' ', n - i);
            size_t e = sp ? (size_t)(sp - p) : n;
            buf_add(b, p + i, e - i);
            if (sp) buf_add(b, st->meta_rep, lr);
            i = sp ? e + 1 : n;
        }
        if (pre && !(b->len >= lr && memcmp(b->buf, st->meta_rep, lr) == 0)) {
            buf_add(b, NULL, lr);
            memmove(b->buf + lr, b->buf, b->len - lr);
            memcpy(b->buf, st->meta_rep, lr);
        }
        p = b->buf, n = b->len;
    }
    return st->re ? split_piece(r, k, p, n) : run_step(r, k + 1, p, n);
}

int pretok_run(const pre_step *steps, int nsteps, const char *text, size_t n, int first, pretok_scratch *s,
               tok_piece_fn piece, void *arg) {
    if (nsteps > PRETOK_MAX_STEPS) return sc_fail("pre_tokenizer: more than %d steps", PRETOK_MAX_STEPS);
    pt_run r = {steps, nsteps, text, first, s, piece, arg};
    return run_step(&r, 0, text, n);
}
