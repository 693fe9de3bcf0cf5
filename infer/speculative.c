/* speculative.c — see speculative.h. One step: draft (prompt lookup first, it is free; else the draft model),
 * verify pending + drafts in one target pass, accept a prefix, roll the rejected tail back. */
#include "infer/speculative.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/clock.h"
#include "host/error.h"
#include "infer/generate.h"
#include "infer/lookup.h"

enum {
    SPEC_PROBE = 16,     /* a source that is off is tried with one token after this many steps, */
    SPEC_BACKOFF = 4,    /* doubled after each probe that fails, up to 16 << 4 = 256 steps */
    SPEC_MISSES = 6,     /* this many drafting steps in a row with nothing accepted turn a source off */
};
#define SPEC_DECAY 0.9   /* weight of the past in the acceptance counts (about the last 10 steps) */
#define SPEC_PRIOR 1.0   /* the acceptance counts start at 0.5 of 1 trial: a prior of 1/2 that decays with them */
#define SPEC_TDECAY 0.95 /* and in the timing fit */

int spec_open(sc_spec *sp, const sc_spec_opts *o, const sc_engine *e, int n_ctx) {
    memset(sp, 0, sizeof *sp);
    sp->o = *o;
    sp->V = e->cfg->vocab_size;
    sp->debug = getenv("SMALLCODER_SPEC_DEBUG") != NULL;
    if (o->draft && o->draft->cfg->vocab_size != sp->V)
        return sc_fail("the draft model has %d tokens in its vocabulary, the target %d: they must share one "
                       "tokenizer", o->draft->cfg->vocab_size, sp->V);
    /* a draft forward costs about its weight bytes over the target's (decode reads every weight once) */
    if (o->draft) {
        sp->draft_ratio = (double)o->draft->weight_bytes / (double)(e->weight_bytes > 0 ? e->weight_bytes : 1);
        if (sp->draft_ratio < 0.02) sp->draft_ratio = 0.02;
    }
    for (int i = 0; i < SPEC_NSRC; i++) sp->hits[i] = 0.5 * SPEC_PRIOR, sp->trials[i] = SPEC_PRIOR;
    sp->kmax = o->draft_max > 0 ? o->draft_max : 8;
    if (sp->kmax > engine_verify_max(e) - 1) sp->kmax = engine_verify_max(e) - 1;
    size_t V = (size_t)sp->V, K = (size_t)sp->kmax;
    sp->all = sc_malloc((K + 1) * V * sizeof(float));
    sp->q = sc_malloc(K * V * sizeof(float));
    sp->pdist = sc_malloc(V * sizeof(float)), sp->res = sc_malloc(V * sizeof(float));
    sp->dlogits = sc_malloc(V * sizeof(float));
    sp->d = sc_malloc(K * sizeof(int32_t));
    if (o->draft) {
        sp->dsess = sc_calloc(1, sizeof *sp->dsess);
        session_create(sp->dsess, o->draft, n_ctx > 0 ? n_ctx : e->cfg->max_position_embeddings);
    }
    return 0;
}

void spec_close(sc_spec *sp) {
    spec_end(sp);
    if (sp->dsess) session_free(sp->dsess), free(sp->dsess);
    free(sp->all), free(sp->q), free(sp->pdist), free(sp->res), free(sp->dlogits), free(sp->d);
    memset(sp, 0, sizeof *sp);
}

void spec_begin(sc_spec *sp, const sc_sampling *sampling) {
    spec_end(sp);
    sc_sampling d = *sampling;
    d.seed = sampling->seed ^ 0x9E3779B97F4A7C15ull; /* independent of the target's draws */
    sampler_init(&sp->dsmp, &d, sp->V);
    sp->dsmp_live = 1;
    sp->n_drafted = sp->n_accepted = sp->n_steps = 0;
}

void spec_end(sc_spec *sp) {
    if (sp->dsmp_live) sampler_free(&sp->dsmp);
    sp->dsmp_live = 0;
}

/* the target's pass time a + b * tokens, fitted on the recent passes; until the fit has two different sizes,
 * a prior: each further token costs a fifth of a pass (the CPU INT8 engine's prefill/decode ratio) */
static void spec_pass_cost(const sc_spec *sp, double *a, double *b) {
    double var = sp->sw > 0 ? sp->snn / sp->sw - (sp->sn / sp->sw) * (sp->sn / sp->sw) : 0;
    if (sp->sw <= 0) {
        *a = 1, *b = 0.2;
        return;
    }
    if (var < 0.05) { /* one size only: split its mean time by the prior */
        double n = sp->sn / sp->sw, t = sp->st / sp->sw;
        *a = t / (1 + 0.2 * (n - 1)), *b = 0.2 * *a;
        return;
    }
    *b = (sp->snt / sp->sw - (sp->sn / sp->sw) * (sp->st / sp->sw)) / var;
    *a = sp->st / sp->sw - *b * (sp->sn / sp->sw);
    if (*a <= 0) *a = 1e-6;
    if (*b < 0.05 * *a) *b = 0.05 * *a; /* noise (a shared machine) must not make extra tokens look free */
}

static void spec_pass_record(sc_spec *sp, int n, double t) {
    sp->sw = sp->sw * SPEC_TDECAY + 1, sp->sn = sp->sn * SPEC_TDECAY + n, sp->snn = sp->snn * SPEC_TDECAY + n * n;
    sp->st = sp->st * SPEC_TDECAY + t, sp->snt = sp->snt * SPEC_TDECAY + n * t;
}

/* How many tokens to draft from source src: the k <= cap with the most expected tokens per second, where a step
 * yields 1 + a + a^2 + ... + a^k tokens at acceptance rate a and costs a pass of k + 1 tokens plus k drafts; 0
 * when no k beats a plain step by 2%. A source at 0 is off: it costs nothing (the draft model does not run) and
 * is probed with one token after SPEC_PROBE plain steps, the wait doubling after each probe that fails (up to
 * 16 << SPEC_BACKOFF steps) and back to SPEC_PROBE on any accepted token (spec_adapt). */
static int spec_choose_k(sc_spec *sp, int src, int cap) {
    if (cap <= 0) return 0;
    if (sp->o.fixed_k > 0) return sp->o.fixed_k < cap ? sp->o.fixed_k : cap;
    if (sp->off[src]) {
        if (++sp->idle[src] < SPEC_PROBE << sp->backoff[src]) return 0;
        sp->idle[src] = 0, sp->probing[src] = 1;
        if (sp->debug) fprintf(stderr, "spec: src %d probe (backoff %d)\n", src, sp->backoff[src]);
        return 1;
    }
    double a, b, td;
    if (sp->dsmp.p.temperature > 0) {
        /* sampling: K must not depend on timings, or a seed would not reproduce its output (K decides which
         * random numbers are drawn): a model of the costs from the weight bytes instead */
        a = 1, b = 0.2, td = sp->draft_ratio;
    } else {
        spec_pass_cost(sp, &a, &b);
        td = sp->t_draft > 0 ? sp->t_draft : sp->draft_ratio * a;
    }
    /* decayed counts whose prior (1/2) decays with them: a source that is always wrong goes to 0, so that a
     * cheap verification pass no longer makes K = 1 look worth its cost (a prior kept at full weight held the
     * rate at >= 1/12 and K at 1 once a pass of 2 tokens cost < 1.07 of one) */
    double alpha = sp->trials[src] > 0 ? sp->hits[src] / sp->trials[src] : 0;
    double per = b + (src == SPEC_DRAFT ? td : 0);
    double best = 1 / (a + b), yield = 1, pw = 1;
    int bk = 0;
    for (int k = 1; k <= cap; k++) {
        pw *= alpha, yield += pw;
        double rate = yield / (a + b * (k + 1) + (per - b) * k);
        if (rate > best * 1.02) best = rate, bk = k; /* 2%: a draft must clearly pay */
    }
    if (sp->debug)
        fprintf(stderr, "spec: src %d alpha %.2f pass %.3g ms + %.3g ms/token, draft %.3g ms -> k %d\n", src, alpha,
                a * 1e3, b * 1e3, td * 1e3, bk);
    if (bk == 0) sp->off[src] = 1, sp->idle[src] = 0;
    return bk;
}

/* After a step in which source src drafted nd tokens (nd = 0: it ran and proposed nothing) and acc were accepted:
 * the acceptance counts, and the on/off state. Any accepted token turns the source on with the shortest probe
 * wait; SPEC_MISSES steps in a row with none turn it off, whatever the cost model says (its rate estimate
 * lags, and these counts make the back-off deterministic: with sampling K must not depend on timings); a
 * failed probe doubles the wait. */
static void spec_adapt(sc_spec *sp, int src, int nd, int acc) {
    sp->trials[src] = sp->trials[src] * SPEC_DECAY + acc + (acc < nd || nd == 0);
    sp->hits[src] = sp->hits[src] * SPEC_DECAY + acc;
    if (acc > 0) {
        sp->off[src] = 0, sp->misses[src] = 0, sp->backoff[src] = 0;
    } else if (sp->probing[src]) {
        sp->backoff[src] += sp->backoff[src] < SPEC_BACKOFF;
    } else if (++sp->misses[src] >= SPEC_MISSES) {
        sp->off[src] = 1, sp->idle[src] = 0;
        if (sp->debug) fprintf(stderr, "spec: src %d off after %d steps without an accepted token\n", src, SPEC_MISSES);
    }
    sp->probing[src] = 0;
}

/* softmax probability of the top logit */
static float top_prob(const float *l, int V, int top) {
    double s = 0;
    for (int v = 0; v < V; v++) s += exp((double)l[v] - l[top]);
    return (float)(1 / s);
}

/* The draft model's proposal of up to k tokens after hist[0..nh): its cache is synced to hist by common prefix
 * (the step's accepted tokens and the pending one, usually 1-2 forwards), then k - 1 single steps. Greedy: its
 * argmax; sampled: a draw from its filtered distribution, kept in sp->q for verification. */
static int spec_draft_model(sc_spec *sp, const int32_t *hist, int nh, int k) {
    sc_engine *de = sp->o.draft;
    sc_session *ds = sp->dsess;
    int greedy = sp->dsmp.p.temperature <= 0, V = sp->V;
    if (nh + k >= ds->kv.n_ctx) k = ds->kv.n_ctx - nh - 1; /* the draft's context may be the shorter */
    if (k <= 0) return 0;
    int c = session_common_prefix(ds, hist, nh);
    if (c >= nh) c = nh - 1;
    ds->kv.n = c;
    memcpy(ds->ids + c, hist + c, (size_t)(nh - c) * sizeof(int32_t));
    double t0 = clock_now();
    if (engine_forward(de, &ds->kv, hist + c, nh - c, sp->dlogits)) return -1;
    /* the draft's cost per token from its small forwards only (a catch-up after idle steps is a batch) */
    int nf = nh - c <= 2 ? 1 : 0;
    if (!nf) t0 = clock_now();
    int n = 0;
    for (; n < k; n++) {
        int32_t id;
        float ptop;
        if (greedy) {
            id = sampler_sample(&sp->dsmp, sp->dlogits, ds->ids, ds->kv.n);
            ptop = top_prob(sp->dlogits, V, id);
        } else {
            float *q = sp->q + (size_t)n * V;
            int32_t top = sampler_dist(&sp->dsmp, sp->dlogits, ds->ids, ds->kv.n, q);
            ptop = q[top];
            id = sampler_draw(&sp->dsmp, q);
        }
        if (ptop < sp->o.draft_min_p) break;
        sp->d[n] = id;
        if (n + 1 < k) {
            ds->ids[ds->kv.n] = id;
            if (engine_forward(de, &ds->kv, &id, 1, sp->dlogits)) return -1;
            nf++;
        }
    }
    if (nf) {
        double t = (clock_now() - t0) / nf;
        sp->t_draft = sp->t_draft > 0 ? 0.8 * sp->t_draft + 0.2 * t : t;
    }
    return n;
}

int spec_prefill(sc_spec *sp, const int32_t *ids, int n) {
    if (!sp->o.draft || n <= 1) return 0;
    sc_session *ds = sp->dsess;
    if (n >= ds->kv.n_ctx) return 0; /* a draft with a shorter context than the prompt: it never drafts */
    int c = session_common_prefix(ds, ids, n - 1);
    ds->kv.n = c;
    if (c == n - 1) return 0;
    memcpy(ds->ids + c, ids + c, (size_t)(n - 1 - c) * sizeof(int32_t));
    return engine_forward(sp->o.draft, &ds->kv, ids + c, n - 1 - c, NULL);
}

int spec_step(sc_spec *sp, sc_engine *e, sc_session *s, sc_sampler *smp, int32_t pending, int max_new, int32_t *out) {
    int V = sp->V, n0 = s->kv.n, greedy = smp->p.temperature <= 0;
    s->ids[n0] = pending;
    int nh = n0 + 1, cap = sp->kmax, nd = 0, src = -1;
    if (cap > s->kv.n_ctx - 2 - n0) cap = s->kv.n_ctx - 2 - n0; /* pending + drafts + one more position fit */
    if (cap > max_new - 1) cap = max_new - 1;
    if (sp->o.lookup > 0) {
        int k = spec_choose_k(sp, SPEC_LOOKUP, cap);
        if (k > 0 && (nd = lookup_draft(s->ids, nh, sp->o.lookup, k, sp->d)) > 0) src = SPEC_LOOKUP;
        else if (sp->probing[SPEC_LOOKUP]) /* no match is no failure (it cost nothing): probe at the next step */
            sp->probing[SPEC_LOOKUP] = 0, sp->idle[SPEC_LOOKUP] = (SPEC_PROBE << sp->backoff[SPEC_LOOKUP]) - 1;
    }
    if (nd == 0 && sp->o.draft) {
        int k = spec_choose_k(sp, SPEC_DRAFT, cap);
        if (k > 0 && (nd = spec_draft_model(sp, s->ids, nh, k)) < 0) return -1;
        if (nd > 0) src = SPEC_DRAFT;
        else if (k > 0 && !sp->o.fixed_k) spec_adapt(sp, SPEC_DRAFT, 0, 0); /* ran, proposed nothing */
    }
    /* verify: pending and the drafts in one pass, logits of every position */
    memcpy(s->ids + nh, sp->d, (size_t)nd * sizeof(int32_t));
    double t0 = clock_now();
    if (engine_forward_all(e, &s->kv, s->ids + n0, nd + 1, sp->all)) {
        s->kv.n = n0;
        return -1;
    }
    spec_pass_record(sp, nd + 1, clock_now() - t0);
    int acc = 0;
    int32_t next = -1;
    for (; acc < nd; acc++) {
        float *l = sp->all + (size_t)acc * V;
        int32_t dt = sp->d[acc];
        if (greedy) {
            int32_t t = sampler_sample(smp, l, s->ids, nh + acc);
            if (t != dt) {
                next = t;
                break;
            }
            continue;
        }
        /* accept dt with probability min(1, p(dt) / q(dt)); else draw from the residual max(0, p - q), normalised.
         * Prompt lookup proposes deterministically: q is one-hot at dt. */
        sampler_dist(smp, l, s->ids, nh + acc, sp->pdist);
        const float *q = src == SPEC_DRAFT ? sp->q + (size_t)acc * V : NULL;
        double qd = q ? q[dt] : 1.0, pd = sp->pdist[dt];
        if (sampler_uniform(smp) * qd < pd) continue;
        double tot = 0;
        for (int v = 0; v < V; v++) {
            float r = sp->pdist[v] - (q ? q[v] : (v == dt ? 1.0f : 0.0f));
            sp->res[v] = r > 0 ? r : 0;
            tot += sp->res[v];
        }
        next = sampler_draw(smp, tot > 0 ? sp->res : sp->pdist);
        break;
    }
    if (next < 0) next = sampler_sample(smp, sp->all + (size_t)nd * V, s->ids, nh + nd); /* all accepted: a bonus */
    s->kv.n = nh + acc; /* the rejected drafts are forgotten (engine_kv_rollback without the check) */
    if (src >= 0 && !sp->o.fixed_k) spec_adapt(sp, src, nd, acc);
    sp->n_drafted += nd, sp->n_accepted += acc, sp->n_steps++;
    memcpy(out, sp->d, (size_t)acc * sizeof(int32_t));
    out[acc] = next;
    return acc + 1;
}
