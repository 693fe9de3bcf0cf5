/* metrics.c — metrics.jsonl writing, reloading on resume, and the plot's data (see metrics.h). Numbers are
 * written with 17 significant digits so two runs can be compared bit for bit from the file. */
#include "train/metrics.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/fileio.h"

static void push(metrics_point **v, int *n, int *cap, double x, double y) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        metrics_point *nv = realloc(*v, sizeof **v * (size_t)*cap);
        if (!nv) return; /* the plot loses a point; the jsonl line is still written */
        *v = nv;
    }
    (*v)[(*n)++] = (metrics_point){x, y};
}

static void fmt_num(char *buf, size_t n, double v) {
    if (isfinite(v)) snprintf(buf, n, "%.17g", v);
    else snprintf(buf, n, "null");
}

/* Reads the existing file, keeping the complete records up to keep_upto; returns the kept text (malloc'd). */
static char *reload(metrics *mx, int64_t keep_upto) {
    char *data;
    size_t len;
    if (file_read_all(mx->jsonl_path, &data, &len)) return NULL;
    char *kept = sc_malloc(len + 1);
    size_t k = 0;
    for (char *line = data; *line;) {
        char *end = strchr(line, '\n');
        if (!end) break; /* torn last line from a crash */
        *end = 0;
        cJSON *j = cJSON_Parse(line);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
        if (cJSON_IsNumber(step) && step->valuedouble <= (double)keep_upto && cJSON_IsString(type)) {
            int is_eval = strcmp(type->valuestring, "eval") == 0;
            if (is_eval && step->valuedouble >= 0 && step->valuedouble > (double)mx->last_eval_step)
                mx->last_eval_step = (int64_t)step->valuedouble; /* in [0, keep_upto]: no out-of-range cast */
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(j, is_eval ? "val_loss" : "loss");
            if (cJSON_IsNumber(y)) {
                if (is_eval) push(&mx->val, &mx->nval, &mx->cap_val, step->valuedouble, y->valuedouble);
                else push(&mx->train, &mx->ntrain, &mx->cap_train, step->valuedouble, y->valuedouble);
            }
            size_t l = strlen(line);
            memcpy(kept + k, line, l);
            kept[k + l] = '\n';
            k += l + 1;
        }
        cJSON_Delete(j);
        line = end + 1;
    }
    kept[k] = 0;
    free(data);
    return kept;
}

int metrics_open(metrics *mx, const char *run_dir, int64_t keep_upto) {
    memset(mx, 0, sizeof *mx);
    mx->last_eval_step = -1;
    char p[4200];
    mx->jsonl_path = strdup(path_join(p, sizeof p, run_dir, "metrics.jsonl"));
    mx->svg_path = strdup(path_join(p, sizeof p, run_dir, "loss.svg"));
    char *kept = NULL;
    FILE *probe = keep_upto >= 0 ? fopen(mx->jsonl_path, "rb") : NULL;
    if (probe) {
        fclose(probe);
        kept = reload(mx, keep_upto);
        if (!kept) goto fail;
    }
    if (atomic_write_file(mx->jsonl_path, kept ? kept : "", kept ? strlen(kept) : 0)) goto fail;
    free(kept);
    kept = NULL;
    mx->f = fopen(mx->jsonl_path, "ab");
    if (!mx->f) {
        sc_fail("%s: cannot open for appending (%s)", mx->jsonl_path, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    free(kept);
    metrics_close(mx);
    return -1;
}

static int emit(metrics *mx, const char *line) {
    if (fputs(line, mx->f) < 0 || fflush(mx->f) != 0)
        return sc_fail("%s: write failed (%s)", mx->jsonl_path, strerror(errno));
    return 0;
}

int metrics_log_step(metrics *mx, const metrics_step *s) {
    char loss[32], gn[32], line[1024];
    fmt_num(loss, sizeof loss, s->loss);
    fmt_num(gn, sizeof gn, s->grad_norm);
    snprintf(line, sizeof line,
             "{\"type\":\"train\",\"step\":%lld,\"loss\":%s,\"lr\":%.9g,\"grad_norm\":%s,\"tokens\":%lld,"
             "\"step_tokens\":%lld,\"tok_s\":%.1f,\"loss_scale\":%.9g,\"skipped\":%d,\"skipped_total\":%lld,"
             "\"elapsed_s\":%.3f}\n",
             (long long)s->step, loss, (double)s->lr, gn, (long long)s->tokens, (long long)s->step_tokens, s->tok_s,
             (double)s->loss_scale, s->skipped, (long long)s->skipped_total, s->elapsed_s);
    if (isfinite(s->loss)) push(&mx->train, &mx->ntrain, &mx->cap_train, (double)s->step, s->loss);
    return emit(mx, line);
}

int metrics_log_eval(metrics *mx, int64_t step, double loss, int64_t tokens) {
    char l[32], ppl[32], line[512];
    fmt_num(l, sizeof l, loss);
    fmt_num(ppl, sizeof ppl, exp(loss));
    snprintf(line, sizeof line, "{\"type\":\"eval\",\"step\":%lld,\"val_loss\":%s,\"val_ppl\":%s,\"val_tokens\":%lld}\n",
             (long long)step, l, ppl, (long long)tokens);
    if (isfinite(loss)) push(&mx->val, &mx->nval, &mx->cap_val, (double)step, loss);
    mx->last_eval_step = step;
    return emit(mx, line);
}

int metrics_write_svg(metrics *mx) {
    return loss_svg_write(mx->svg_path, mx->train, mx->ntrain, mx->val, mx->nval, "SmallCoder training loss");
}

void metrics_close(metrics *mx) {
    if (mx->f) fclose(mx->f);
    free(mx->jsonl_path), free(mx->svg_path), free(mx->train), free(mx->val);
    memset(mx, 0, sizeof *mx);
}
