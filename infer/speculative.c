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
    SPEC_PROBE_COST = 4, /* (this many when the cost model turned it off: a close call, often wrong under noise) */
    SPEC_BACKOFF = 4,    /* doubled after each probe that fails, up to 16 << 4 = 256 steps */
    SPEC_MISSES = 6,     /* this many drafting steps in a row with nothing accepted turn a source off */
};
#define SPEC_DECAY 0.9   /* weight of the past in the acceptance counts (about the last 10 steps) */
#define SPEC_PRIOR 1.0   /* the acceptance counts start at 0.5 of 1 trial: a prior of 1/2 that decays with them */
#define SPEC_OFF_RATE 0.15 /* SPEC_MISSES turn a source off when its rate is below this too (spec_adapt) */
#define SPEC_PRIOR_TOKEN 0.1 /* a verified token after the second costs this much of a step, until measured */
#define SPEC_TRUST 4.0       /* samples of a pass size after which its measured time alone counts */
#define SPEC_EVIDENCE 3.0    /* decayed drafted tokens checked before the cost model may turn a source off */

/* What the cost model times passes and draft forwards with: on the CPU engine the calling thread's CPU time (it
 * runs the forward, or leads its OpenMP team and waits for it spinning), which leaves out the time the thread was
 * preempted: on the 2 shared cores at load 8-10, 1..3-token passes timed 12.7/8.5/12.5 ms wall but 4.7/4.4/4.6 ms
 * of CPU (infer-bench --verify-cost), and wall timings made the sizes' costs too noisy to compare. The CUDA
 * engine's thread may sleep while the device works: wall time there. */
static double spec_clock(const sc_spec *sp) {
    return sp->cpu_clock ? clock_thread_cpu() : clock_now();
}

int spec_open(sc_spec *sp, const sc_spec_opts *o, const sc_engine *e, int n_ctx) {
    memset(sp, 0, sizeof *sp);
    sp->o = *o;
    sp->V = e->cfg->vocab_size;
    sp->debug = getenv("SMALLCODER_SPEC_DEBUG") != NULL;
    sp->cpu_clock = !strcmp(e->ops->name, "cpu") && (!o->draft || !strcmp(o->draft->ops->name, "cpu"));
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

/* The target's seconds for a pass of n tokens (1 = a plain step): its measured spec_low_avg, blended over its
 * first SPEC_TRUST samples with the prior shape (spec_prior: a pass of n tokens costs 1 + 0.1 (n - 2) steps)
 * scaled to the most measured size, which is also all there is for a size never measured. A size is only
 * measured when chosen: one slow first sample (a cold cache, a preemption) would otherwise keep it from being
 * chosen again; the prior is optimistic enough to get sizes tried. The cost is not linear on the CPU: a pass of
 * 2/3/4 tokens costs 1.08/1.18/1.33 one-token steps (7-layer 104 MiB target, infer-bench --verify-cost, one
 * thread, since one token runs through the several-token INT8 kernel too; before that 2-3 tokens cost 0.82-0.89).
 * Sampling uses the prior alone: K must not depend on timings there, or a seed would not reproduce its output (K
 * decides which random numbers are drawn). */
/* decode is bound by reading the weights: a second token in the pass costs next to nothing, each further one
 * SPEC_PRIOR_TOKEN (an optimistic prior: the measured times replace it) */
static double spec_prior(int n) { return n <= 2 ? 1 : 1 + SPEC_PRIOR_TOKEN * (n - 2); }

static double spec_pass_measured(const sc_spec *sp, int n) {
    double prior = spec_prior(n);
    int m = 0;
    for (int i = 1; i <= SPEC_PASS_MAX; i++)
        if (sp->npass[i] > (m ? sp->npass[m] : 0)) m = i;
    if (!m) return prior;
    double model = sp->tpass[m] * prior / spec_prior(m);
    if (n > SPEC_PASS_MAX || sp->npass[n] <= 0) return model;
    double w = sp->npass[n] < SPEC_TRUST ? sp->npass[n] / SPEC_TRUST : 1;
    return w * sp->tpass[n] + (1 - w) * model;
}

static double spec_pass_time(const sc_spec *sp, int n) {
    return sp->dsmp.p.temperature > 0 ? spec_prior(n) : spec_pass_measured(sp, n);
}

/* a low quantile of the recent samples (the estimate falls half-way to a faster sample, rises by 5% of the way to
 * a slower one): on a shared machine a pass that was preempted says nothing about what a size costs, and sizes
 * measured minutes apart (a size is only measured when it is chosen) stay comparable */
static double spec_low_avg(double cur, double t) { return cur <= 0 ? t : cur + (t < cur ? 0.5 : 0.05) * (t - cur); }

/* a sample is clipped to [1/2, 2] of what the size is thought to cost: a first sample 4x too slow (preempted)
 * kept a size from being chosen again */
static void spec_pass_record(sc_spec *sp, int n, double t) {
    if (n > SPEC_PASS_MAX) return;
    int m = 0;
    for (int i = 1; i <= SPEC_PASS_MAX; i++)
        if (sp->npass[i] > (m ? sp->npass[m] : 0)) m = i;
    if (m) {
        double exp = spec_pass_measured(sp, n);
        t = t > 2 * exp ? 2 * exp : t < 0.5 * exp ? 0.5 * exp : t;
    }
    sp->tpass[n] = spec_low_avg(sp->npass[n] > 0 ? sp->tpass[n] : 0, t), sp->npass[n]++;
}

/* How many tokens to draft from source src: the k <= cap with the most expected tokens per second, where a step
 * yields 1 + a + a^2 + ... + a^k tokens at acceptance rate a and costs a pass of k + 1 tokens (spec_pass_time)
 * plus k draft forwards; 0 when no k beats a plain step by 2%. A source at 0 is off: it costs nothing (the draft
 * model does not run) and is probed with one token after SPEC_PROBE_COST plain steps (SPEC_PROBE when it went
 * off for missing, spec_adapt), the wait doubling after each probe that fails (up to SPEC_BACKOFF times) and back
 * to the shortest on any accepted token (spec_adapt). A cost-model off is a close call between K = 0 and 1 at
 * best; on this CPU, where a 2-token pass costs less than a plain step, it was mostly noise, and a wait of 16
 * steps after it cost a 96-token run 10-20% of its speedup. */
static int spec_choose_k(sc_spec *sp, int src, int cap) {
    if (cap <= 0) return 0;
    if (sp->o.fixed_k > 0) return sp->o.fixed_k < cap ? sp->o.fixed_k : cap;
    if (sp->off[src]) {
        if (++sp->idle[src] < sp->wait[src] << sp->backoff[src]) return 0;
        sp->idle[src] = 0, sp->probing[src] = 1;
        if (sp->debug) fprintf(stderr, "spec: src %d probe (backoff %d)\n", src, sp->backoff[src]);
        return 1;
    }
    double t1 = spec_pass_time(sp, 1), td = 0;
    if (src == SPEC_DRAFT) /* sampling: from the weight bytes (see spec_pass_time) */
        td = sp->dsmp.p.temperature <= 0 && sp->t_draft > 0 ? sp->t_draft : sp->draft_ratio * t1;
    /* decayed counts whose prior (1/2) decays with them: a source that is always wrong goes to 0, so that a
     * cheap verification pass no longer makes K = 1 look worth its cost (a prior kept at full weight held the
     * rate at >= 1/12 and K at 1 once a pass of 2 tokens cost < 1.07 of one) */
    double alpha = sp->trials[src] > 0 ? sp->hits[src] / sp->trials[src] : 0;
    double best = 1 / t1, yield = 1, pw = 1;
    int bk = 0;
    for (int k = 1; k <= cap; k++) {
        pw *= alpha, yield += pw;
        double rate = yield / (spec_pass_time(sp, k + 1) + td * k);
        if (rate > best * 1.02) best = rate, bk = k; /* 2%: a draft must clearly pay */
    }
    /* off on the cost model only with some evidence: after one or two rejections the rate (prior 1/2 worth one
     * token) is at 0.15-0.24, and going off for SPEC_PROBE steps there lost a third of a 96-token run */
    if (bk == 0 && sp->trials[src] < SPEC_EVIDENCE) bk = 1;
    if (sp->debug)
        fprintf(stderr, "spec: src %d alpha %.2f pass 1/2/3/%d: %.3g/%.3g/%.3g/%.3g ms, draft %.3g ms -> k %d\n", src,
                alpha, cap + 1, t1 * 1e3, spec_pass_time(sp, 2) * 1e3, spec_pass_time(sp, 3) * 1e3,
                spec_pass_time(sp, cap + 1) * 1e3, td * 1e3, bk);
    if (bk == 0) sp->off[src] = 1, sp->idle[src] = 0, sp->wait[src] = SPEC_PROBE_COST;
    return bk;
}

/* After a step in which source src drafted nd tokens (nd = 0: it ran and proposed nothing) and acc were accepted:
 * the acceptance counts, and the on/off state. Any accepted token turns the source on with the shortest probe
 * wait; SPEC_MISSES steps in a row with none turn it off, whatever the cost model says (these counts make the
 * back-off deterministic: with sampling K must not depend on timings), once the rate has also fallen below
 * SPEC_OFF_RATE: a useful draft misses 6 steps in a row often enough (at a = 0.3 and K = 2, 12% of the time)
 * that going off on the count alone cost it a third of its drafts (16 plain steps each time) and made the
 * adaptive K slower than a fixed K = 2; an always-wrong one is at a ~ 0.05 by then. A failed probe doubles the
 * wait. */
static void spec_adapt(sc_spec *sp, int src, int nd, int acc) {
    sp->trials[src] = sp->trials[src] * SPEC_DECAY + acc + (acc < nd || nd == 0);
    sp->hits[src] = sp->hits[src] * SPEC_DECAY + acc;
    if (acc > 0) {
        sp->off[src] = 0, sp->misses[src] = 0, sp->backoff[src] = 0;
    } else if (sp->probing[src]) {
        sp->backoff[src] += sp->backoff[src] < SPEC_BACKOFF;
    } else if (++sp->misses[src] >= SPEC_MISSES && sp->hits[src] < SPEC_OFF_RATE * sp->trials[src]) {
        sp->off[src] = 1, sp->idle[src] = 0, sp->wait[src] = SPEC_PROBE;
        if (sp->debug) fprintf(stderr, "spec: src %d off after %d steps without an accepted token\n", src, sp->misses[src]);
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
    double t0 = spec_clock(sp);
    if (engine_forward(de, &ds->kv, hist + c, nh - c, sp->dlogits)) return -1;
    /* the draft's cost per token from its small forwards only (a catch-up after idle steps is a batch) */
    int nf = nh - c <= 2 ? 1 : 0;
    if (!nf) t0 = spec_clock(sp);
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
        double t = (spec_clock(sp) - t0) / nf;
        sp->t_draft = spec_low_avg(sp->t_draft, t);
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
            sp->probing[SPEC_LOOKUP] = 0, sp->idle[SPEC_LOOKUP] = (sp->wait[SPEC_LOOKUP] << sp->backoff[SPEC_LOOKUP]) - 1;
    }
    if (nd == 0 && sp->o.draft) {
        int k = spec_choose_k(sp, SPEC_DRAFT, cap);
        if (k > 0 && (nd = spec_draft_model(sp, s->ids, nh, k)) < 0) return -1;
        if (nd > 0) src = SPEC_DRAFT;
        else if (k > 0 && !sp->o.fixed_k) spec_adapt(sp, SPEC_DRAFT, 0, 0); /* ran, proposed nothing */
    }
    /* verify: pending and the drafts in one pass, logits of every position */
    memcpy(s->ids + nh, sp->d, (size_t)nd * sizeof(int32_t));
    double t0 = spec_clock(sp);
    if (engine_forward_all(e, &s->kv, s->ids + n0, nd + 1, sp->all)) {
        s->kv.n = n0;
        return -1;
    }
    spec_pass_record(sp, nd + 1, spec_clock(sp) - t0);
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
