/* progress.h — the one-line progress display on stderr: step/total, loss, tok/s, LR, loss scale (and skipped
 * steps), ETA. On a terminal the line is redrawn in place with \r; otherwise (logs, pipes) each update is a plain
 * line. Notes (evals, checkpoints) are printed on their own line without breaking the bar. */
#ifndef SC_TRAIN_PROGRESS_H
#define SC_TRAIN_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    int tty;
    int enabled;
    int bar_shown;         /* a \r line is on screen */
    double t_start;
    int64_t step_start;    /* step at which this process started (ETA uses only its own pace) */
    int64_t total;
} progress;

void progress_init(progress *p, FILE *f, int enabled, int64_t step_start, int64_t total);
void progress_update(progress *p, int64_t step, double loss, double tok_s, float lr, float loss_scale,
                     int64_t skipped);
void progress_note(progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_end(progress *p);
/* "1h02m", "3m05s", "12s" */
const char *progress_fmt_duration(char *buf, size_t n, double seconds);

#endif
