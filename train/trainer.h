/* trainer.h — the training loop shared by every backend: gradient accumulation over micro-batches with one loss
 * normalisation per step, (dynamic) loss scaling, global-norm clipping, AdamW with warmup + cosine LR, periodic
 * evaluation and checkpoints, metrics, progress, and a clean stop on Ctrl-C. */
#ifndef SC_TRAIN_TRAINER_H
#define SC_TRAIN_TRAINER_H

#include <stdint.h>

#include "host/progress.h"

#include "train/backend.h"
#include "train/batch.h"
#include "train/loss_scale.h"
#include "train/lr_schedule.h"
#include "train/metrics.h"

typedef struct cJSON cJSON;

typedef struct {
    int seq, micro_batch, grad_accum;   /* a step trains on grad_accum x micro_batch windows of seq tokens */
    lr_schedule sched;                  /* sched.total = steps of the whole run */
    float weight_decay, clip, beta1, beta2, eps;
    int dynamic_loss_scale;             /* FP16 backends; FP32 keeps a scale of 1 */
    int eval_every, save_every, keep;   /* 0 = never (a final checkpoint is always written when run_dir is set) */
    int64_t eval_tokens;                /* tokens per evaluation (whole windows, at least one) */
    int64_t stop_at;                    /* stop after this step with a checkpoint, schedule unchanged (0 = off) */
    int max_skips;                      /* stop with a checkpoint after this many skipped steps in a row (0 = never) */
    const char *run_dir;                /* NULL: no checkpoints, metrics or plot (tests) */
    int have_saved_step;                /* run_dir already holds the complete checkpoint of step saved_step (the */
    int64_t saved_step;                 /* one resumed from): saving that step again is skipped */
    const char *tokenizer;              /* tokenizer.json copied into each checkpoint, or NULL */
    const cJSON *options;               /* recorded as "options" in trainer_state.json */
    int show_progress;
    /* test hook: runs after a step's gradients are accumulated, before their norm is taken */
    void (*after_accumulate)(void *ctx, train_backend *b, int64_t step);
    void *hook_ctx;
} train_config;

typedef struct {
    int64_t step;          /* optimizer steps done, skipped ones included */
    int64_t tokens;        /* input tokens trained on */
    int64_t updates;       /* AdamW updates applied (bias correction t) */
    loss_scaler scaler;
    double loss;           /* mean loss of the last step */
    double grad_norm;      /* its unscaled global gradient norm */
    float lr;              /* its learning rate */
    int skipped;           /* whether it was skipped */
    double val_loss;       /* last evaluation (NAN before the first) */
} train_state;

typedef struct {
    train_backend *b;
    batch_source *train, *val;
    train_config cfg;
    train_state st;
    int32_t *windows, *ids, *targets;
    metrics mx;
    int have_metrics;
    progress pg;           /* one line per step: step/total, loss, tok/s, LR, loss scale, ETA */
    int64_t pg_step0, pg_end; /* the step this process started at (the ETA counts its own pace only), the last */
    double t_open;
    double step_seconds;   /* wall time of the last step */
    char last_ckpt[4096];
} trainer;

/* resume: NULL for a fresh run, else the state restored from a checkpoint (the caller has already loaded weights,
 * moments and the data position). With run_dir set, metrics.jsonl is started or cut back to resume->step. */
int trainer_open(trainer *t, train_backend *b, batch_source *train, batch_source *val, const train_config *c,
                 const train_state *resume);
void trainer_close(trainer *t);

/* One optimizer step. Returns 0, 1 when interrupted by a signal between micro-batches (the step is undone: data
 * position rewound, gradients zeroed, nothing updated), or -1 on error. */
int trainer_step(trainer *t);
/* The whole run from t->st.step to the end (or stop_at). Returns 0 when finished, 1 when stopped by a signal
 * (after saving a checkpoint), 2 when cfg.max_skips steps in a row were skipped for non-finite gradients (after
 * saving a checkpoint: training cannot progress, see trainer_skip_reason), -1 on error. */
int trainer_run(trainer *t);
/* The one-line reason of a trainer_run that returned 2. */
const char *trainer_skip_reason(const trainer *t, char *buf, size_t n);
/* Writes the checkpoint for the current step into cfg.run_dir and rewrites loss.svg. */
int trainer_save(trainer *t);

/* Mean loss over the first windows of a sequential source covering at least max_tokens tokens (at least one
 * window, at most one pass), micro_batch windows per backend call. */
int trainer_evaluate(train_backend *b, batch_source *val, int micro_batch, int64_t max_tokens, double *mean_loss,
                     int64_t *tokens);

/* trainer_state.json: the state, the data position and the options. */
char *train_state_to_json(const train_state *s, const train_config *c, const cJSON *data_state);
/* Parses trainer_state.json text; *data and *options (may be NULL) receive detached copies to cJSON_Delete. */
int train_state_from_json(const char *text, const char *path, train_state *s, lr_schedule *sched, cJSON **data,
                          cJSON **options);

/* SIGINT/SIGTERM set a flag checked between micro-batches; a second signal kills the process as usual. */
void trainer_install_signals(void);

#endif
