/* progress.c — see progress.h. */
#include "train/progress.h"

#include <math.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#include "host/clock.h"

void progress_init(progress *p, FILE *f, int enabled, int64_t step_start, int64_t total) {
    p->f = f;
    p->tty = isatty(fileno(f));
    p->enabled = enabled;
    p->bar_shown = 0;
    p->t_start = clock_now();
    p->step_start = step_start;
    p->total = total;
}

const char *progress_fmt_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, n, "%ds", (int)s);
    return buf;
}

void progress_update(progress *p, int64_t step, double loss, double tok_s, float lr, float scale, int64_t skipped) {
    if (!p->enabled) return;
    double el = clock_now() - p->t_start;
    int64_t done = step - p->step_start;
    double eta = done > 0 ? el / (double)done * (double)(p->total - step) : NAN;
    char e[32], line[256], sk[32] = "";
    if (skipped) snprintf(sk, sizeof sk, " (%lld skipped)", (long long)skipped);
    int width = 24, fill = p->total > 0 ? (int)((double)width * (double)step / (double)p->total) : 0;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    snprintf(line, sizeof line, "step %lld/%lld [%s] loss %.4f | %.0f tok/s | lr %.3g | scale %g%s | eta %s",
             (long long)step, (long long)p->total, bar, loss, tok_s, (double)lr, (double)scale, sk,
             progress_fmt_duration(e, sizeof e, eta));
    if (p->tty) {
        fprintf(p->f, "\r%s\033[K", line);
        p->bar_shown = 1;
    } else {
        fprintf(p->f, "%s\n", line);
    }
    fflush(p->f);
}

void progress_note(progress *p, const char *fmt, ...) {
    if (p->bar_shown) fprintf(p->f, "\r\033[K");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->f, fmt, ap);
    va_end(ap);
    fprintf(p->f, "\n");
    p->bar_shown = 0;
    fflush(p->f);
}

void progress_end(progress *p) {
    if (p->bar_shown) fprintf(p->f, "\n");
    p->bar_shown = 0;
    fflush(p->f);
}
