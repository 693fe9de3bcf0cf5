/* generate.c — see generate.h. */
#include "infer/generate.h"
#include "infer/fim_format.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/clock.h"
#include "host/error.h"

void session_create(sc_session *s, const sc_engine *e, int n_ctx) {
    engine_kv_create(e, &s->kv, n_ctx);
    s->kv.n = 0;
    memset(&s->lora, 0, sizeof s->lora);
    s->ids = sc_malloc((size_t)s->kv.n_ctx * sizeof(int32_t));
}

void session_free(sc_session *s) {
    kv_free(&s->kv);
    free(s->ids);
    s->ids = NULL;
}

int session_common_prefix(const sc_session *s, const int32_t *ids, int n) {
    int i = 0;
    while (i < s->kv.n && i < n && s->ids[i] == ids[i]) i++;
    return i;
}

int session_reusable_prefix(const sc_session *s, const sc_lora_set *lora, const int32_t *ids, int n) {
    static const sc_lora_set none;
    return engine_lora_set_equal(&s->lora, lora ? lora : &none) ? session_common_prefix(s, ids, n) : 0;
}

/* Takes the engine (its lock when shared) and selects the request's adapters: another request may have run with
 * other ones since this one's last call. On failure the lock is released again. */
static int engine_enter(sc_engine *e, const sc_gen_params *p) {
    if (p->lock) pthread_mutex_lock(p->lock);
    if (engine_lora_use(e, p->lora) == 0) return 0;
    if (p->lock) pthread_mutex_unlock(p->lock);
    return -1;
}

static void engine_leave(const sc_gen_params *p) {
    if (p->lock) pthread_mutex_unlock(p->lock);
}

void gen_result_free(sc_gen_result *r) {
    free(r->text);
    r->text = NULL;
}

static int is_end_token(const sc_tokenizer *tok, const sc_config *c, int32_t id) {
    if (c->eos_token_id >= 0 && id == c->eos_token_id) return 1;
    for (int i = 0; i < c->n_eos; i++) /* config.json's and generation_config.json's lists (Llama-3: 3 ids) */
        if (id == c->eos_ids[i]) return 1;
    return fim_is_end_token(tok, id); /* every family's end-of-text and FIM sentinels */
}

/* bytes at the end of buf[0..n) that may be the start of a multi-byte UTF-8 character not yet complete */
static size_t utf8_incomplete_tail(const char *buf, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = (unsigned char)buf[n - k];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: look further back */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

/* length of the longest suffix of buf that is a proper prefix of a stop string */
static size_t stop_prefix_tail(const char *buf, size_t n, const char *const *stop, int nstop) {
    size_t best = 0;
    for (int i = 0; i < nstop; i++) {
        size_t sl = strlen(stop[i]);
        for (size_t k = sl - 1; k > best; k--)
            if (k <= n && memcmp(buf + n - k, stop[i], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

int generate(sc_engine *e, sc_session *s, const sc_tokenizer *tok, const int32_t *prompt, int n,
             const sc_gen_params *p, sc_gen_result *r) {
    memset(r, 0, sizeof *r);
    int V = e->cfg->vocab_size, n_ctx = s->kv.n_ctx;
    if (n <= 0) return sc_fail("the prompt is empty");
    if (n >= n_ctx) return sc_fail("the prompt has %d tokens; the context holds %d", n, n_ctx);
    /* reuse the longest common prefix computed with the same adapters, but always run at least the last prompt
     * token to get its logits */
    static const sc_lora_set none;
    int reuse = session_reusable_prefix(s, p->lora, prompt, n);
    if (reuse >= n) reuse = n - 1;
    s->kv.n = reuse;
    s->lora = p->lora ? *p->lora : none;
    memcpy(s->ids + reuse, prompt + reuse, (size_t)(n - reuse) * sizeof(int32_t));
    r->n_prompt = n, r->n_cached = reuse;
    float *logits = sc_malloc((size_t)V * sizeof(float));
    sc_sampler smp;
    /* checkpoints pad the embedding past the tokenizer (Qwen2.5: 151936 rows, 151665 tokens): those rows have no
     * text, so they are never sampled */
    int nv = tokenizer_vocab_size(tok);
    sampler_init(&smp, &p->sampling, nv > 0 && nv < V ? nv : V);
    size_t cap = 256, len = 0, emitted = 0;
    char *text = sc_malloc(cap);
    text[0] = 0;
    int rc = 0;
    double t0 = clock_now();
    rc = engine_enter(e, p);
    if (!rc) {
        rc = engine_forward(e, &s->kv, prompt + reuse, n - reuse, logits);
        if (!rc && p->spec) rc = spec_prefill(p->spec, prompt, n); /* the draft's cache too, all but the last */
        engine_leave(p);
    }
    if (rc) s->kv.n = reuse; /* nothing half-cached */
    r->prefill_s = clock_now() - t0;
    t0 = clock_now();
    r->stop_reason = "length";
    /* tokens chosen and not yet emitted: one at a time without speculation; with it, a step's accepted drafts
     * (already in the cache) and the target's next token (not yet: it is `pending` for the next step) */
    sc_spec *sp = p->spec;
    int32_t *queue = sc_malloc((size_t)(sp ? sp->kmax + 1 : 1) * sizeof(int32_t)), pending = -1;
    int nq = 0, qi = 0;
    if (sp) spec_begin(sp, &p->sampling);
    for (int i = 0; !rc && i < p->max_tokens; i++) {
        if (qi == nq) {
            if (engine_enter(e, p)) {
                rc = -1;
                break;
            }
            if (pending < 0) queue[0] = sampler_sample(&smp, logits, s->ids, s->kv.n), nq = 1;
            else if ((nq = spec_step(sp, e, s, &smp, pending, p->max_tokens - i, queue)) < 0) rc = -1;
            engine_leave(p);
            if (rc) break;
            qi = 0;
        }
        int32_t id = queue[qi++];
        if (is_end_token(tok, e->cfg, id)) {
            r->stop_reason = "eos";
            break;
        }
        r->n_generated++;
        char *piece;
        size_t plen;
        if (tokenizer_decode_cont(tok, &id, 1, &piece, &plen)) { /* continues the prompt: no leading-space strip */
            rc = -1;
            break;
        }
        if (len + plen + 1 > cap) {
            while (len + plen + 1 > cap) cap *= 2;
            text = realloc(text, cap);
            if (!text) sc_malloc((size_t)-1);
        }
        memcpy(text + len, piece, plen);
        len += plen;
        text[len] = 0;
        free(piece);
        /* a stop string completed (search only where it could newly end) */
        int stopped = 0;
        for (int k = 0; k < p->nstop && !stopped; k++) {
            size_t sl = strlen(p->stop[k]), from = emitted;
            char *hit = sl ? strstr(text + from, p->stop[k]) : NULL;
            if (hit) {
                len = (size_t)(hit - text);
                text[len] = 0;
                r->stop_reason = "stop", r->stop_word = p->stop[k];
                stopped = 1;
            }
        }
        size_t hold = stopped ? 0 : utf8_incomplete_tail(text, len) + stop_prefix_tail(text, len, p->stop, p->nstop);
        if (hold > len - emitted) hold = len - emitted;
        if (p->on_text && len - hold > emitted) {
            if (p->on_text(p->ctx, text + emitted, len - hold - emitted)) {
                r->stop_reason = "cancelled";
                break;
            }
            emitted = len - hold;
        }
        if (stopped) break;
        if (qi < nq) continue; /* an accepted draft: already in the cache */
        if (s->kv.n + 1 >= n_ctx) {
            r->stop_reason = "context";
            break;
        }
        if (sp) {
            pending = id; /* the next step verifies it together with the drafts after it */
            continue;
        }
        s->ids[s->kv.n] = id;
        if ((rc = engine_enter(e, p)) == 0) {
            rc = engine_forward(e, &s->kv, &id, 1, logits);
            engine_leave(p);
        }
        qi = nq = 0;
    }
    if (sp) {
        r->n_drafted = sp->n_drafted, r->n_accepted = sp->n_accepted;
        spec_end(sp);
    }
    free(queue);
    if (!rc && p->on_text && len > emitted && strcmp(r->stop_reason, "cancelled"))
        p->on_text(p->ctx, text + emitted, len - emitted);
    r->decode_s = clock_now() - t0;
    sampler_free(&smp);
    free(logits);
    if (rc) {
        free(text);
        return -1;
    }
    r->text = text, r->len = len;
    return 0;
}

int fim_prompt(const sc_tokenizer *tok, const char *format, const char *prefix, const char *suffix, int32_t **ids,
               int *n) {
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    /* the post-processor's leading tokens (BOS: Llama, DeepSeek-Coder, CodeLlama), as HF's tokenizer(text) and
     * llama.cpp's add_bos give them; a trailing template token (an EOS) is not added: the completion follows */
    const int32_t *sp;
    int nsp = tokenizer_special_prefix(tok, &sp);
    fim_format f;
    if (suffix && fim_format_find(tok, format, &f)) return -1;
    if (tokenizer_encode(tok, prefix, strlen(prefix), &a, &na)) return -1;
    /* the suffix continues the text: a SentencePiece tokenizer adds no "▁" at its start (CodeLlama's infilling
     * encodes it so); the prefix gets it as a plain encode does */
    if (suffix && tokenizer_encode_cont(tok, suffix, strlen(suffix), &b, &nb)) {
        free(a);
        return -1;
    }
    int32_t *out = sc_malloc(((size_t)nsp + na + nb + 4) * sizeof(int32_t));
    int k = 0;
    if (nsp) memcpy(out, sp, (size_t)nsp * sizeof(int32_t)), k += nsp;
    if (suffix) out[k++] = f.pre;
    if (na) memcpy(out + k, a, na * sizeof(int32_t)), k += (int)na;
    if (suffix) {
        out[k++] = f.suf;
        if (nb) memcpy(out + k, b, nb * sizeof(int32_t)), k += (int)nb;
        out[k++] = f.mid;
    }
    free(a), free(b);
    *ids = out, *n = k;
    return 0;
}
