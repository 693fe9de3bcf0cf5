/* progress.c — see progress.h. */
#include "host/progress.h"

#include <math.h>
#include <stdarg.h>
#include <unistd.h>

#include "host/clock.h"

void progress_start(progress *p, int enabled, double every_tty, double every_log) {
    p->f = stderr;
    p->enabled = enabled;
    p->tty = isatty(fileno(stderr));
    p->every = p->tty ? every_tty : every_log;
    p->start = p->last = clock_now();
    p->shown = 0;
    p->rate = 0;
    p->eta = NAN;
}

int progress_update(progress *p, double done, double total, int force) {
    if (!p->enabled) return 0;
    double now = clock_now();
    if (!force && now - p->last < p->every) return 0;
    p->last = now;
    double el = now - p->start;
    p->rate = el > 0 ? done / el : 0;
    p->eta = p->rate > 0 && total >= done ? (total - done) / p->rate : NAN;
    return 1;
}

void progress_draw(progress *p, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (p->tty) {
        fprintf(p->f, "\r%s\033[K", line);
        p->shown = 1;
    } else {
        fprintf(p->f, "%s\n", line);
    }
    fflush(p->f);
}

void progress_note(progress *p, const char *fmt, ...) {
    if (p->shown) fprintf(p->f, "\r\033[K");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->f, fmt, ap);
    va_end(ap);
    fputc('\n', p->f);
    p->shown = 0;
    fflush(p->f);
}

void progress_finish(progress *p) {
    if (p->shown) fputc('\n', p->f);
    p->shown = 0;
    fflush(p->f);
}

const char *progress_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, n, "%ds", (int)s);
    return buf;
}
