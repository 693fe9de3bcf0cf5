/* trainer.c — the training loop (see trainer.h). One step: fetch all grad_accum x micro_batch windows, count the
 * positions that carry a loss, run the micro-batches with grad_scale = loss_scale / counted (so K micro-batches
 * of B give the gradient of the mean over all K*B windows, exactly as one batch of K*B would), take the global
 * norm, skip on inf/nan, unscale + clip + AdamW. */
#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/clock.h"
#include "train/checkpoint.h"
#include "host/error.h"
#include "host/fileio.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    interrupted = 1;
    signal(sig, SIG_DFL); /* a second Ctrl-C ends the process at once; the checkpoint on disk stays intact */
}

void trainer_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}


int trainer_open(trainer *t, train_backend *b, batch_source *train, batch_source *val, const train_config *c,
                 const train_state *resume) {
    memset(t, 0, sizeof *t);
    t->b = b, t->train = train, t->val = val, t->cfg = *c;
    if (c->seq < 1 || c->micro_batch < 1 || c->grad_accum < 1)
        return sc_fail("seq, micro-batch and grad-accum must be at least 1");
    if (train->seq != c->seq) return sc_fail("data source serves %d-token windows, the trainer wants %d", train->seq, c->seq);
    if (resume) {
        t->st = *resume;
        /* a checkpoint of the other engine (CPU: static scale 1; CUDA: dynamic, 2^16 at the start): the scaler
         * starts afresh for this backend, so a CPU checkpoint does not train FP16 activations unscaled on CUDA */
        if (resume->scaler.dynamic != c->dynamic_loss_scale) {
            loss_scale_init(&t->st.scaler, c->dynamic_loss_scale);
            t->st.scaler.skipped = resume->scaler.skipped; /* the run's count of skipped steps goes on */
        }
    } else {
        loss_scale_init(&t->st.scaler, c->dynamic_loss_scale);
        t->st.val_loss = NAN;
    }
    size_t n = (size_t)c->grad_accum * (size_t)c->micro_batch;
    t->windows = sc_malloc(sizeof(int32_t) * n * (size_t)(c->seq + 1));
    t->ids = sc_malloc(sizeof(int32_t) * n * (size_t)c->seq);
    t->targets = sc_malloc(sizeof(int32_t) * n * (size_t)c->seq);
    if (c->run_dir) {
        if (metrics_open(&t->mx, c->run_dir, resume ? resume->step : -1)) {
            trainer_close(t);
            return -1;
        }
        t->have_metrics = 1;
    }
    int64_t end = c->stop_at > 0 && c->stop_at < c->sched.total ? c->stop_at : c->sched.total;
    progress_start(&t->pg, c->show_progress, 0, 0);
    t->pg_step0 = t->st.step, t->pg_end = end;
    t->t_open = clock_now();
    return 0;
}

void trainer_close(trainer *t) {
    free(t->windows), free(t->ids), free(t->targets);
    if (t->have_metrics) metrics_close(&t->mx);
    t->windows = t->ids = t->targets = NULL;
    t->have_metrics = 0;
}

int trainer_step(trainer *t) {
    const train_config *c = &t->cfg;
    train_backend *b = t->b;
    const int T = c->seq, B = c->micro_batch, K = c->grad_accum;
    double t0 = clock_now();
    cJSON *pos = t->train->state_to_json(t->train->ctx); /* to undo the step on an interrupt */
    if (!pos) return sc_fail("cannot read the data position");
    int rc = 0;
    for (int i = 0; i < K * B && !rc; i++) rc = t->train->next(t->train->ctx, t->windows + (int64_t)i * (T + 1));
    if (rc) {
        cJSON_Delete(pos);
        return -1;
    }
    int64_t counted = batch_split(t->windows, K * B, T, t->train->ignore_id, t->ids, t->targets);
    float scale = t->st.scaler.scale;
    float grad_scale = counted > 0 ? (float)((double)scale / (double)counted) : 0.0f;
    double loss_sum = 0;
    b->step = t->st.step;
    for (int k = 0; k < K; k++) {
        if (interrupted) {
            rc = t->train->state_from_json(t->train->ctx, pos);
            if (!rc) rc = b->zero_grads(b);
            cJSON_Delete(pos);
            return rc ? -1 : 1;
        }
        double ls;
        int64_t cnt;
        const int64_t off = (int64_t)k * B * T;
        if (b->accumulate(b, t->ids + off, t->targets + off, B, T, grad_scale, &ls, &cnt)) {
            cJSON_Delete(pos);
            return -1;
        }
        loss_sum += ls;
    }
    cJSON_Delete(pos);
    if (c->after_accumulate) c->after_accumulate(c->hook_ctx, b, t->st.step);

    double sumsq;
    if (b->grad_sumsq(b, &sumsq)) return -1;
    int finite = isfinite(sumsq) && counted > 0;
    double norm;
    float mul = grad_multiplier(finite ? sumsq : 0.0, scale, c->clip, &norm);
    if (!finite) norm = counted > 0 ? INFINITY : 0.0;
    float lr = lr_at(&c->sched, t->st.step);
    if (loss_scale_update(&t->st.scaler, finite)) {
        adamw_hparams h = {lr, c->beta1, c->beta2, c->eps, c->weight_decay, t->st.updates + 1};
        if (b->apply(b, mul, &h)) return -1;
        t->st.updates++;
        t->st.skipped = 0;
    } else {
        if (b->zero_grads(b)) return -1;
        t->st.skipped = 1;
    }
    t->st.step++;
    t->st.tokens += (int64_t)K * B * T;
    t->st.loss = counted > 0 ? loss_sum / (double)counted : NAN;
    t->st.grad_norm = norm;
    t->st.lr = lr;
    t->step_seconds = clock_now() - t0;
    return 0;
}

int trainer_evaluate(train_backend *b, batch_source *val, int micro_batch, int64_t max_tokens, double *mean_loss,
                     int64_t *tokens) {
    const int T = val->seq;
    uint64_t avail = val->windows(val->ctx);
    uint64_t want = max_tokens > 0 ? (uint64_t)((max_tokens + T - 1) / T) : avail;
    if (want > avail) want = avail;
    if (want < 1) want = 1;
    if (micro_batch < 1) micro_batch = 1;
    if (val->rewind(val->ctx)) return -1;
    int32_t *w = sc_malloc(sizeof(int32_t) * (size_t)micro_batch * (size_t)(T + 1));
    int32_t *ids = sc_malloc(sizeof(int32_t) * (size_t)micro_batch * (size_t)T);
    int32_t *tg = sc_malloc(sizeof(int32_t) * (size_t)micro_batch * (size_t)T);
    double sum = 0;
    int64_t counted = 0;
    int rc = 0;
    for (uint64_t done = 0; done < want && !rc;) {
        int n = want - done < (uint64_t)micro_batch ? (int)(want - done) : micro_batch;
        for (int i = 0; i < n && !rc; i++) rc = val->next(val->ctx, w + (int64_t)i * (T + 1));
        if (rc) break;
        batch_split(w, n, T, val->ignore_id, ids, tg);
        double ls;
        int64_t cnt;
        rc = b->evaluate(b, ids, tg, n, T, &ls, &cnt);
        sum += ls, counted += cnt, done += (uint64_t)n;
    }
    free(w), free(ids), free(tg);
    if (rc) return -1;
    *mean_loss = counted ? sum / (double)counted : NAN;
    *tokens = counted;
    return 0;
}

int trainer_save(trainer *t) {
    const train_config *c = &t->cfg;
    if (c->have_saved_step && t->st.step == c->saved_step) { /* nothing trained since the resumed checkpoint */
        char name[64];
        snprintf(name, sizeof name, "ckpt-%lld", (long long)t->st.step);
        path_join(t->last_ckpt, sizeof t->last_ckpt, c->run_dir, name);
        return 0;
    }
    const float *m, *v;
    if (t->b->read_state(t->b, &m, &v)) return -1;
    cJSON *data = t->train->state_to_json(t->train->ctx);
    if (!data) return sc_fail("cannot read the data position");
    char *json = train_state_to_json(&t->st, c, data);
    cJSON_Delete(data);
    checkpoint_data d = {t->b->model, m, v, json, c->tokenizer, t->b->lora};
    int rc = checkpoint_save(c->run_dir, t->st.step, &d, c->keep, t->last_ckpt, sizeof t->last_ckpt);
    free(json);
    if (!rc && t->have_metrics) rc = metrics_write_svg(&t->mx);
    return rc;
}

static int run_eval(trainer *t) {
    double loss;
    int64_t tokens;
    double t0 = clock_now();
    if (trainer_evaluate(t->b, t->val, t->cfg.micro_batch, t->cfg.eval_tokens, &loss, &tokens)) return -1;
    t->st.val_loss = loss;
    progress_note(&t->pg, "eval at step %lld: val loss %.4f, perplexity %.2f (%lld tokens, %.1fs)",
                  (long long)t->st.step, loss, exp(loss), (long long)tokens, clock_now() - t0);
    return t->have_metrics ? metrics_log_eval(&t->mx, t->st.step, loss, tokens) : 0;
}

/* "step 12/100 [##......] loss 3.2100 | 5120 tok/s | lr 0.003 | scale 65536 (2 skipped) | eta 3m05s" */
static void show_progress(trainer *t, double tok_s) {
    const train_state *s = &t->st;
    if (!progress_update(&t->pg, (double)(s->step - t->pg_step0), (double)(t->pg_end - t->pg_step0), 1)) return;
    char e[32], sk[32] = "", bar[32];
    if (s->scaler.skipped) snprintf(sk, sizeof sk, " (%lld skipped)", (long long)s->scaler.skipped);
    int width = 24, fill = t->pg_end > 0 ? (int)((double)width * (double)s->step / (double)t->pg_end) : 0;
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    progress_draw(&t->pg, "step %lld/%lld [%s] loss %.4f | %.0f tok/s | lr %.3g | scale %g%s | eta %s",
                  (long long)s->step, (long long)t->pg_end, bar, s->loss, tok_s, (double)s->lr,
                  (double)s->scaler.scale, sk, progress_duration(e, sizeof e, t->pg.eta));
}

static int save_and_note(trainer *t, const char *why) {
    if (!t->cfg.run_dir) return 0;
    double t0 = clock_now();
    if (trainer_save(t)) return -1;
    progress_note(&t->pg, "%s checkpoint %s (%.1fs)", why, t->last_ckpt, clock_now() - t0);
    return 0;
}

const char *trainer_skip_reason(const trainer *t, char *buf, size_t n) {
    const loss_scaler *s = &t->st.scaler;
    snprintf(buf, n, "stopped after step %lld: %lld steps in a row were skipped for inf/nan gradients (loss scale now "
             "%g; last loss %g)%s%s", (long long)t->st.step, (long long)s->consecutive, (double)s->scale, t->st.loss,
             t->last_ckpt[0] ? "; checkpoint " : "", t->last_ckpt);
    return buf;
}

int trainer_run(trainer *t) {
    const train_config *c = &t->cfg;
    int64_t end = c->stop_at > 0 && c->stop_at < c->sched.total ? c->stop_at : c->sched.total;
    int64_t last_eval = t->have_metrics ? t->mx.last_eval_step : -1; /* a finished run is not evaluated twice */
    while (t->st.step < end) {
        int rc = trainer_step(t);
        if (rc < 0) return -1;
        if (rc == 1) break;
        const train_state *s = &t->st;
        double tok_s = t->step_seconds > 0 ? (double)c->grad_accum * c->micro_batch * c->seq / t->step_seconds : 0;
        if (t->have_metrics) {
            metrics_step ms = {s->step, s->loss, s->lr, s->grad_norm, s->tokens, (int64_t)c->grad_accum * c->micro_batch * c->seq,
                               tok_s, s->scaler.scale, s->skipped, s->scaler.skipped, clock_now() - t->t_open};
            if (metrics_log_step(&t->mx, &ms)) return -1;
        }
        show_progress(t, tok_s);
        if (t->val && c->eval_every > 0 && s->step % c->eval_every == 0) {
            if (run_eval(t)) return -1;
            last_eval = s->step;
        }
        if (c->max_skips > 0 && s->scaler.consecutive >= c->max_skips) {
            /* every loss scale tried overflowed (or the loss itself is not finite): stop rather than spin */
            progress_finish(&t->pg);
            if (c->run_dir && trainer_save(t)) return -1;
            return 2;
        }
        if (interrupted) break;
        if (c->save_every > 0 && s->step % c->save_every == 0 && s->step < end && save_and_note(t, "saved")) return -1;
    }
    if (interrupted) {
        progress_finish(&t->pg);
        if (c->run_dir) {
            if (trainer_save(t)) return -1;
            progress_note(&t->pg, "interrupted after step %lld: saved checkpoint %s", (long long)t->st.step, t->last_ckpt);
        }
        return 1;
    }
    if (t->val && c->eval_every > 0 && last_eval != t->st.step && run_eval(t)) return -1;
    progress_finish(&t->pg);
    return save_and_note(t, "saved") ? -1 : 0;
}
