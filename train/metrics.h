/* metrics.h — the run's record: RUN_DIR/metrics.jsonl gets one JSON object per optimizer step ("type":"train")
 * and per evaluation ("type":"eval"), flushed as written; RUN_DIR/loss.svg plots both curves (loss_svg.c).
 * On resume the file is cut back to the checkpoint's step, so it always describes one consistent run. */
#ifndef SC_TRAIN_METRICS_H
#define SC_TRAIN_METRICS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    int64_t step;          /* 1-based: the step just completed */
    double loss;           /* mean training loss of the step */
    float lr;
    double grad_norm;      /* unscaled, before clipping */
    int64_t tokens;        /* tokens trained on so far */
    int64_t step_tokens;
    double tok_s;
    float loss_scale;
    int skipped;           /* 1 when the update was skipped (non-finite gradients) */
    int64_t skipped_total;
    double elapsed_s;      /* wall time of this process so far */
} metrics_step;

typedef struct {
    double x, y;
} metrics_point;

typedef struct {
    char *jsonl_path, *svg_path;
    FILE *f;
    metrics_point *train, *val;
    int ntrain, nval, cap_train, cap_val;
    int64_t last_eval_step;   /* step of the newest eval record (kept or written), -1 none: a resumed run that
                                 has nothing left to train does not evaluate the same step again */
} metrics;

/* Opens RUN_DIR/metrics.jsonl. keep_upto < 0 starts a new file; otherwise the records with step <= keep_upto are
 * kept (a resumed run) and the rest, including a torn last line, dropped. */
int metrics_open(metrics *mx, const char *run_dir, int64_t keep_upto);
int metrics_log_step(metrics *mx, const metrics_step *s);
int metrics_log_eval(metrics *mx, int64_t step, double loss, int64_t tokens);
/* Rewrites RUN_DIR/loss.svg from everything logged so far. */
int metrics_write_svg(metrics *mx);
void metrics_close(metrics *mx);

/* Writes an SVG line chart of the training curve (and the validation points, when nval > 0) to path,
 * atomically. */
int loss_svg_write(const char *path, const metrics_point *train, int ntrain, const metrics_point *val, int nval,
                   const char *title);

#endif
