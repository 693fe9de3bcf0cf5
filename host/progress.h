/* progress.h — the one progress line of long jobs (tokenize, tokenizer train, teacher, train) on stderr. On a
 * terminal the line is redrawn in place (\r ... ESC[K); elsewhere (logs, CI, pipes) each draw is a plain line.
 * The caller words the line; this module decides when one is due and works out the pace and the time left. */
#ifndef SC_PROGRESS_H
#define SC_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

#include "host/error.h" /* SC_PRINTF */

/* Least seconds between two lines of a long job: a terminal is redrawn 5 times a second, a log gets a line every
 * 10 s. 0 draws at every update (train: one line per optimizer step). */
#define PROGRESS_EVERY_TTY 0.2
#define PROGRESS_EVERY_LOG 10.0

typedef struct {
    FILE *f;            /* stderr */
    int enabled, tty;
    double every;       /* least seconds between two lines (PROGRESS_EVERY_TTY or _LOG by tty) */
    double start, last; /* clock_now() at progress_start, at the last line drawn */
    int shown;          /* an in-place line is on screen (ended by progress_note / progress_finish) */
    double rate, eta;   /* set by a progress_update that returns 1: units per second, seconds left (NAN: unknown) */
} progress;

/* Starts the clock. enabled 0: progress_update never draws (notes still print). every_tty / every_log: the least
 * seconds between lines on a terminal / in a log. */
void progress_start(progress *p, int enabled, double every_tty, double every_log);
/* done of total units so far (since start). Returns 1 when a line is due (enabled, and the interval has passed
 * since the last line, or force), after setting p->rate and p->eta from the pace since start; else 0. */
int progress_update(progress *p, double done, double total, int force);
/* Draws the line: in place on a terminal, a plain line elsewhere. */
void progress_draw(progress *p, const char *fmt, ...) SC_PRINTF(2, 3);
/* A line of its own (an evaluation, a checkpoint, a summary), printed whether enabled or not: it clears an
 * in-place line first, and the next progress line starts below it. */
void progress_note(progress *p, const char *fmt, ...) SC_PRINTF(2, 3);
/* Ends an in-place line so what follows starts on a fresh line. */
void progress_finish(progress *p);
/* A duration for ETAs: "1h02m", "3m05s", "12s"; "?" when unknown (NAN or negative). */
const char *progress_duration(char *buf, size_t n, double seconds);

#endif
