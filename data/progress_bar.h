/* progress_bar.h — one status line on stderr for long data jobs: redrawn in place (\r) at most 5 times a
 * second when stderr is a terminal, and printed as a plain line every 10 s otherwise (logs, CI). */
#ifndef SC_PROGRESS_BAR_H
#define SC_PROGRESS_BAR_H

#include <stdint.h>

typedef struct {
    const char *label;
    int tty;
    double start, last;
    uint64_t files_total, bytes_total;
    int drawn;
} progress_bar;

void progress_bar_init(progress_bar *p, const char *label, uint64_t files_total, uint64_t bytes_total);
/* Draws when enough time has passed since the last draw, or with force (final state; terminals only). */
void progress_bar_update(progress_bar *p, uint64_t files, uint64_t bytes, uint64_t tokens, int force);
/* Ends the in-place line so the summary starts on a fresh line. */
void progress_bar_finish(progress_bar *p);

#endif
