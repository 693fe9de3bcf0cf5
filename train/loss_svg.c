/* loss_svg.c — the loss plot as a hand-written SVG (no plotting library): the raw training loss as a light line,
 * its moving average on top when there are enough points, validation loss as dots joined by a line, axes with
 * 1-2-5 ticks and a legend. Written atomically, so a browser refreshing it never sees half a file. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/fileio.h"
#include "train/metrics.h"

enum { W = 800, H = 450, ML = 70, MR = 20, MT = 40, MB = 50, MAX_POINTS = 2000 };

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static void put(sbuf *s, const char *fmt, ...) SC_PRINTF(2, 3);
static void put(sbuf *s, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < s->cap - s->len) {
            s->len += (size_t)n;
            return;
        }
        s->cap = s->cap * 2 + (size_t)(n > 0 ? n : 0) + 64;
        char *nb = realloc(s->buf, s->cap);
        if (!nb) {
            fprintf(stderr, "smallcoder: out of memory writing the loss plot\n");
            exit(1);
        }
        s->buf = nb;
    }
}

/* a step of 1, 2 or 5 x 10^k giving about n ticks over span */
static double nice_step(double span, int n) {
    double raw = span / n, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

typedef struct {
    double x0, x1, y0, y1;
} frame;

static double px(const frame *f, double x) { return ML + (x - f->x0) / (f->x1 - f->x0) * (W - ML - MR); }
static double py(const frame *f, double y) { return H - MB - (y - f->y0) / (f->y1 - f->y0) * (H - MT - MB); }

static void polyline(sbuf *s, const frame *f, const metrics_point *p, int n, const char *style) {
    if (n <= 0) return;
    int stride = n > MAX_POINTS ? (n + MAX_POINTS - 1) / MAX_POINTS : 1;
    put(s, "<polyline fill=\"none\" %s points=\"", style);
    for (int i = 0; i < n; i += stride) put(s, "%.1f,%.1f ", px(f, p[i].x), py(f, p[i].y));
    if ((n - 1) % stride) put(s, "%.1f,%.1f", px(f, p[n - 1].x), py(f, p[n - 1].y));
    put(s, "\"/>\n");
}

int loss_svg_write(const char *path, const metrics_point *tr, int nt, const metrics_point *va, int nv,
                   const char *title) {
    frame f = {INFINITY, -INFINITY, INFINITY, -INFINITY};
    const metrics_point *sets[2] = {tr, va};
    int counts[2] = {nt, nv};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < counts[k]; i++) {
            const metrics_point *p = &sets[k][i];
            if (!isfinite(p->y)) continue;
            f.x0 = fmin(f.x0, p->x), f.x1 = fmax(f.x1, p->x), f.y0 = fmin(f.y0, p->y), f.y1 = fmax(f.y1, p->y);
        }
    if (!isfinite(f.x0)) f = (frame){0, 1, 0, 1};
    if (f.x1 - f.x0 < 1) f.x1 = f.x0 + 1;
    double pad = (f.y1 - f.y0) * 0.05;
    if (pad < 1e-3) pad = 0.5;
    f.y0 -= pad, f.y1 += pad;
    if (f.y0 < 0 && f.y0 + pad >= 0) f.y0 = 0;

    sbuf s = {sc_malloc(65536), 0, 65536};
    put(&s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
        W, H, W, H);
    put(&s, "<text x=\"%d\" y=\"24\" font-size=\"16\" text-anchor=\"middle\">%s</text>\n", W / 2, title);
    /* grid and ticks */
    double ys = nice_step(f.y1 - f.y0, 6), xs = nice_step(f.x1 - f.x0, 8);
    for (double y = ceil(f.y0 / ys) * ys; y <= f.y1 + 1e-9; y += ys)
        put(&s, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
            ML, W - MR, py(&f, y), py(&f, y), ML - 6, py(&f, y) + 4, fabs(y) < ys * 1e-6 ? 0.0 : y);
    for (double x = ceil(f.x0 / xs) * xs; x <= f.x1 + 1e-9; x += xs)
        put(&s, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#e5e5e5\"/>"
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
            px(&f, x), px(&f, x), MT, H - MB, px(&f, x), H - MB + 16, x);
    put(&s, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", ML, MT,
        W - ML - MR, H - MT - MB);
    put(&s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">step</text>\n", (ML + W - MR) / 2, H - 12);
    put(&s, "<text transform=\"translate(18,%d) rotate(-90)\" text-anchor=\"middle\">loss (nats/token)</text>\n",
        (MT + H - MB) / 2);
    /* curves */
    int smooth = nt >= 20;
    polyline(&s, &f, tr, nt, smooth ? "stroke=\"#9ecae1\" stroke-width=\"1\"" : "stroke=\"#1f77b4\" stroke-width=\"1.5\"");
    if (smooth) {
        metrics_point *avg = sc_malloc(sizeof *avg * (size_t)nt);
        int win = nt / 20 > 5 ? nt / 20 : 5;
        double sum = 0;
        for (int i = 0; i < nt; i++) {
            sum += tr[i].y;
            if (i >= win) sum -= tr[i - win].y;
            int k = i + 1 < win ? i + 1 : win;
            avg[i] = (metrics_point){tr[i].x, sum / k};
        }
        polyline(&s, &f, avg, nt, "stroke=\"#1f77b4\" stroke-width=\"2\"");
        free(avg);
    }
    if (nv > 0) {
        polyline(&s, &f, va, nv, "stroke=\"#ff7f0e\" stroke-width=\"1.5\"");
        for (int i = 0; i < nv; i++)
            put(&s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#ff7f0e\"/>\n", px(&f, va[i].x), py(&f, va[i].y));
    }
    /* legend */
    int lx = W - MR - 170, ly = MT + 10;
    put(&s, "<rect x=\"%d\" y=\"%d\" width=\"160\" height=\"%d\" fill=\"white\" stroke=\"#ccc\"/>\n", lx, ly,
        nv > 0 ? 44 : 24);
    put(&s, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
            "<text x=\"%d\" y=\"%d\">train%s</text>\n",
        lx + 8, lx + 32, ly + 12, ly + 12, lx + 38, ly + 16, smooth ? " (moving average)" : "");
    if (nv > 0)
        put(&s, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#ff7f0e\" stroke-width=\"2\"/>"
                "<text x=\"%d\" y=\"%d\">validation</text>\n",
            lx + 8, lx + 32, ly + 32, ly + 32, lx + 38, ly + 36);
    put(&s, "</svg>\n");
    int rc = atomic_write_file(path, s.buf, s.len);
    free(s.buf);
    return rc;
}
