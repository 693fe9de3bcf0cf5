/* test_progress.c — the one progress line (host/progress.h): when a line is due (interval, force, disabled), the
 * pace and time left it works out, how it draws on a terminal (in place, cleared by a note, ended by finish) and
 * in a log (plain lines), and the duration format of the ETAs. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/clock.h"
#include "host/progress.h"
#include "tests/check.h"

/* what p wrote since the last call (p->f is a temporary file) */
static const char *written(progress *p, char *buf, size_t n) {
    fflush(p->f);
    long len = ftell(p->f);
    rewind(p->f);
    size_t got = fread(buf, 1, n - 1, p->f);
    buf[got < (size_t)len ? got : (size_t)len] = 0;
    rewind(p->f);
    CHECK(ftruncate(fileno(p->f), 0) == 0);
    return buf;
}

int main(void) {
    char out[256], b[32];
    progress p;
    progress_start(&p, 1, 1000, 1000);
    p.f = tmpfile();
    CHECK(p.f != NULL);
    if (!p.f) return check_result("test_progress");

    /* due: never within the interval, always when forced; pace and ETA from the clock since start */
    CHECK(progress_update(&p, 1, 10, 0) == 0);
    p.start = clock_now() - 10; /* 10 s ago */
    CHECK(progress_update(&p, 50, 100, 1) == 1);
    CHECKF(fabs(p.rate - 5) < 0.01 && fabs(p.eta - 10) < 0.05, "rate %g eta %g", p.rate, p.eta);
    CHECK(progress_update(&p, 60, 100, 0) == 0); /* the forced line restarted the interval */
    p.every = 0;
    CHECK(progress_update(&p, 0, 100, 0) == 1 && p.rate == 0 && isnan(p.eta)); /* no pace yet: unknown */
    CHECK(progress_update(&p, 120, 100, 0) == 1 && isnan(p.eta));          /* past the total: unknown */

    /* a terminal: the line in place, a note clears it, finish ends it once */
    p.tty = 1;
    progress_draw(&p, "step %d", 1);
    progress_draw(&p, "step %d", 2);
    CHECK(strcmp(written(&p, out, sizeof out), "\rstep 1\033[K\rstep 2\033[K") == 0);
    progress_note(&p, "saved %s", "ckpt-2");
    CHECK(strcmp(written(&p, out, sizeof out), "\r\033[Ksaved ckpt-2\n") == 0);
    progress_finish(&p); /* nothing on screen after the note */
    CHECK(strcmp(written(&p, out, sizeof out), "") == 0);
    progress_draw(&p, "step 3");
    progress_finish(&p);
    progress_finish(&p);
    CHECK(strcmp(written(&p, out, sizeof out), "\rstep 3\033[K\n") == 0);

    /* a log: plain lines, notes as they are, finish adds nothing */
    p.tty = 0;
    progress_draw(&p, "step 4");
    progress_note(&p, "eval");
    progress_finish(&p);
    CHECK(strcmp(written(&p, out, sizeof out), "step 4\neval\n") == 0);

    /* disabled: never due, even forced; notes still print */
    FILE *f = p.f;
    progress_start(&p, 0, 0, 0);
    p.f = f;
    CHECK(progress_update(&p, 1, 2, 1) == 0);
    progress_note(&p, "summary");
    CHECK(strcmp(written(&p, out, sizeof out), "summary\n") == 0);
    fclose(f);

    CHECK(strcmp(progress_duration(b, sizeof b, 3725), "1h02m") == 0);
    CHECK(strcmp(progress_duration(b, sizeof b, 185), "3m05s") == 0);
    CHECK(strcmp(progress_duration(b, sizeof b, 12.7), "12s") == 0);
    CHECK(strcmp(progress_duration(b, sizeof b, NAN), "?") == 0);
    CHECK(strcmp(progress_duration(b, sizeof b, -1), "?") == 0);
    return check_result("test_progress");
}
