/* speculative.h — speculative decoding: a draft (a small model of the same tokenizer, or prompt lookup) proposes
 * the next few tokens, the target verifies them in one batched pass (engine_forward_all), and the accepted ones
 * cost one read of the target's weights together. Greedy output is the target's own token for token; sampled
 * output keeps the target's distribution by the accept/reject-with-residual rule (Leviathan et al. 2023, Chen
 * et al. 2023). How many tokens to draft adapts to the measured acceptance rate and to the measured cost of a
 * verified and of a drafted token, down to none (with a rare probe) when drafts do not pay. */
#ifndef SC_INFER_SPECULATIVE_H
#define SC_INFER_SPECULATIVE_H

#include "host/engine.h"
#include "infer/sampler.h"

typedef struct sc_session sc_session;

typedef struct {
    sc_engine *draft;  /* a draft model's engine (same tokenizer), or NULL */
    int draft_max;     /* most tokens drafted per step (<= 0: 8); capped by engine_verify_max - 1 */
    float draft_min_p; /* the draft model stops when its most likely token is less probable than this */
    int lookup;        /* prompt lookup: longest n-gram looked up (0 = off) */
    int fixed_k;       /* > 0: always draft this many (capped by draft_max), no adaptation (tests, K sweeps) */
} sc_spec_opts;

enum { SPEC_DRAFT, SPEC_LOOKUP, SPEC_NSRC };
enum { SPEC_PASS_MAX = 64 }; /* a pass verifies pending + at most 63 drafts (--draft-max) */

typedef struct {
    sc_spec_opts o;
    int kmax, V;
    sc_session *dsess; /* the draft's KV cache and ids: kept across steps (and requests), synced by common prefix */
    /* adaptation: decayed counts of drafted tokens checked and accepted per source; the target's pass time per
     * number of tokens in the pass (a low quantile of each size's measured seconds and how many were measured:
     * the cost is not linear, a 2-token pass can cost less than a 1-token step); seconds per draft forward */
    double trials[SPEC_NSRC], hits[SPEC_NSRC];
    double tpass[SPEC_PASS_MAX + 1], npass[SPEC_PASS_MAX + 1], t_draft;
    double draft_ratio; /* the draft's weight bytes over the target's: the cost model when sampling */
    /* per source: off (K = 0, not run), plain steps since it went off or was last probed, the probe wait (before
     * doubling) and its doubling count, a probe in flight, drafting steps in a row with nothing accepted */
    int off[SPEC_NSRC], idle[SPEC_NSRC], wait[SPEC_NSRC], backoff[SPEC_NSRC], probing[SPEC_NSRC], misses[SPEC_NSRC];
    int debug;     /* SMALLCODER_SPEC_DEBUG set: each choice of K on stderr */
    int cpu_clock; /* both engines on the CPU: timings in the thread's CPU time (spec_clock) */
    /* per request */
    sc_sampler dsmp; /* the draft's sampling (its own RNG) */
    int dsmp_live;
    float *all, *q, *pdist, *res, *dlogits; /* [kmax+1, V] verify logits, [kmax, V] draft dists, [V] x 3 */
    int32_t *d;                             /* [kmax] drafted ids */
    int n_drafted, n_accepted, n_steps;
} sc_spec;

/* Prepares speculative decoding for sessions of n_ctx positions on target engine e (the draft cache is made
 * here). Fails when the draft's vocabulary differs from the target's. */
int spec_open(sc_spec *sp, const sc_spec_opts *o, const sc_engine *e, int n_ctx);
void spec_close(sc_spec *sp);
/* Per request: the sampling both sides use (the draft draws with its own RNG); zeroes the counters. */
void spec_begin(sc_spec *sp, const sc_sampling *sampling);
void spec_end(sc_spec *sp);

/* Brings the draft model's cache up to ids[0..n) (a prompt), so that the first step drafts at once; the time goes
 * to prefill rather than to the first step. No-op without a draft model. */
int spec_prefill(sc_spec *sp, const int32_t *ids, int n);

/* One step after `pending` (chosen, not yet in the target's cache s): drafts up to min(kmax, max_new - 1) tokens,
 * verifies pending + drafts in one target pass, rolls back the rejected ones. out gets the accepted drafts (now in
 * the cache, their ids in s->ids) and then one more token chosen by the target (not yet in the cache); returns
 * how many (>= 1), -1 on an error. The caller made sure s has room for pending plus one more position. */
int spec_step(sc_spec *sp, sc_engine *e, sc_session *s, sc_sampler *smp, int32_t pending, int max_new, int32_t *out);

#endif
