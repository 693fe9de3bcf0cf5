/* progress_bar.c — see progress_bar.h. */
#include "data/progress_bar.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "host/clock.h"

void progress_bar_init(progress_bar *p, const char *label, uint64_t files_total, uint64_t bytes_total) {
    p->label = label;
    p->tty = isatty(fileno(stderr));
    p->start = p->last = clock_now();
    p->files_total = files_total;
    p->bytes_total = bytes_total;
    p->drawn = 0;
}

static void human(char *buf, size_t n, double v) {
    if (v >= 1e9) snprintf(buf, n, "%.2fG", v / 1e9);
    else if (v >= 1e6) snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, n, "%.1fk", v / 1e3);
    else snprintf(buf, n, "%.0f", v);
}

void progress_bar_update(progress_bar *p, uint64_t files, uint64_t bytes, uint64_t tokens, int force) {
    double now = clock_now();
    if (force && !p->tty) return;  /* in a log the summary that follows says it all */
    if (!force && now - p->last < (p->tty ? 0.2 : 10.0)) return;
    p->last = now;
    double el = now - p->start, rate = el > 0 ? (double)bytes / el : 0;
    char tok[16], eta[32] = "--:--";
    human(tok, sizeof tok, (double)tokens);
    if (rate > 0 && p->bytes_total >= bytes) {
        long s = (long)((double)(p->bytes_total - bytes) / rate + 0.5);
        snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
    double pct = p->bytes_total ? 100.0 * (double)bytes / (double)p->bytes_total : 100.0;
    fprintf(stderr, "%s%s: %5.1f%%  files %llu/%llu  %.1f MB/s  %s tokens  ETA %s%s", p->tty ? "\r" : "", p->label,
            pct, (unsigned long long)files, (unsigned long long)p->files_total, rate / 1e6, tok, eta,
            p->tty ? "\033[K" : "\n");
    fflush(stderr);
    p->drawn = 1;
}

void progress_bar_finish(progress_bar *p) {
    if (p->tty && p->drawn) fputc('\n', stderr);
}
