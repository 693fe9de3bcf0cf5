/* test_train_metrics.c — metrics.jsonl: one record per step and per eval, reloaded and cut back to the
 * checkpoint's step on resume (a torn last line from a crash is dropped); loss.svg is a complete SVG with both
 * curves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/check.h"
#include "train/checkpoint.h"
#include "host/error.h"
#include "host/fileio.h"
#include "train/metrics.h"

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

int main(void) {
    char root[256], p[512];
    snprintf(root, sizeof root, "/tmp/sc_test_train_metrics.%d", (int)getpid());
    CHECK(mkdir(root, 0755) == 0);
    metrics mx;
    CHECK(metrics_open(&mx, root, -1) == 0);
    for (int s = 1; s <= 30; s++) {
        metrics_step st = {s, 5.0 / s + 0.01 * (s % 3), 1e-3f, 0.5, s * 100, 100, 1234.5, 1.0f, 0, 0, s * 0.1};
        CHECK(metrics_log_step(&mx, &st) == 0);
        if (s % 10 == 0) CHECK(metrics_log_eval(&mx, s, 4.0 / s, 640) == 0);
    }
    metrics_step bad = {31, NAN, 1e-3f, INFINITY, 3100, 100, 1, 1.0f, 1, 1, 3.1};
    CHECK(metrics_log_step(&mx, &bad) == 0); /* non-finite values are written as null */
    CHECK(metrics_write_svg(&mx) == 0);
    metrics_close(&mx);
    char *text;
    size_t len;
    CHECK(file_read_all(path_join(p, sizeof p, root, "metrics.jsonl"), &text, &len) == 0);
    CHECK(count(text, "\"type\":\"train\"") == 31 && count(text, "\"type\":\"eval\"") == 3);
    CHECK(strstr(text, "\"loss\":null") != NULL);
    CHECK(strstr(text, "\"loss\":5.0099999999999998,") != NULL); /* 17 digits: the exact double */
    free(text);
    CHECK(file_read_all(path_join(p, sizeof p, root, "loss.svg"), &text, &len) == 0);
    CHECK(strncmp(text, "<?xml", 5) == 0 && strstr(text, "</svg>\n") != NULL);
    CHECK(count(text, "<polyline") == 3); /* raw train, moving average, validation */
    CHECK(count(text, "<circle") == 3);
    free(text);

    /* a crash left a torn line; resume from step 20 keeps steps 1..20 and the evals at 10 and 20 */
    FILE *f = fopen(path_join(p, sizeof p, root, "metrics.jsonl"), "ab");
    fputs("{\"type\":\"train\",\"step\":32,\"lo", f);
    fclose(f);
    CHECK(metrics_open(&mx, root, 20) == 0);
    CHECK(mx.ntrain == 20 && mx.nval == 2);
    metrics_step st = {21, 0.25, 1e-3f, 0.5, 2100, 100, 1, 1.0f, 0, 0, 0};
    CHECK(metrics_log_step(&mx, &st) == 0);
    metrics_close(&mx);
    CHECK(file_read_all(path_join(p, sizeof p, root, "metrics.jsonl"), &text, &len) == 0);
    CHECK(count(text, "\"type\":\"train\"") == 21 && count(text, "\"type\":\"eval\"") == 2);
    CHECK(count(text, "\n") == 23 && text[len - 1] == '\n');
    CHECK(strstr(text, "\"step\":30") == NULL && strstr(text, "\"lo\n") == NULL);
    free(text);
    /* a fresh run truncates */
    CHECK(metrics_open(&mx, root, -1) == 0);
    CHECK(mx.ntrain == 0);
    metrics_close(&mx);
    CHECK(file_read_all(path_join(p, sizeof p, root, "metrics.jsonl"), &text, &len) == 0 && len == 0);
    free(text);
    /* an empty plot is still a valid file */
    CHECK(loss_svg_write(path_join(p, sizeof p, root, "empty.svg"), NULL, 0, NULL, 0, "empty") == 0);

    checkpoint_remove_tree(root);
    return check_result("test_train_metrics");
}
