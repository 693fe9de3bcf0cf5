/* train_state.c — trainer_state.json: everything besides weights and moments that a resumed run needs to continue
 * the identical loss sequence (step, tokens, AdamW update count, loss scaler, LR schedule, data position) plus
 * the options the run was started with. 64-bit counters are written as numbers (exact below 2^53). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "train/train_options.h"
#include "train/trainer.h"

#define STATE_FORMAT "smallcoder-trainer-state"
#define STATE_VERSION 1
#define STATE_EXACT_MAX 9007199254740992.0 /* 2^53: counters beyond it are not exact in the file's doubles */

char *train_state_to_json(const train_state *s, const train_config *c, const cJSON *data_state) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", STATE_FORMAT);
    cJSON_AddNumberToObject(j, "version", STATE_VERSION);
    cJSON_AddNumberToObject(j, "step", (double)s->step);
    cJSON_AddNumberToObject(j, "tokens", (double)s->tokens);
    cJSON_AddNumberToObject(j, "adamw_updates", (double)s->updates);
    cJSON *ls = cJSON_AddObjectToObject(j, "loss_scale");
    cJSON_AddNumberToObject(ls, "scale", (double)s->scaler.scale);
    cJSON_AddBoolToObject(ls, "dynamic", s->scaler.dynamic);
    cJSON_AddNumberToObject(ls, "good_steps", (double)s->scaler.good_steps);
    cJSON_AddNumberToObject(ls, "skipped_steps", (double)s->scaler.skipped);
    cJSON *lr = cJSON_AddObjectToObject(j, "lr_schedule");
    cJSON_AddStringToObject(lr, "kind", "warmup+cosine");
    cJSON_AddNumberToObject(lr, "lr", (double)c->sched.lr);
    cJSON_AddNumberToObject(lr, "min_lr", (double)c->sched.min_lr);
    cJSON_AddNumberToObject(lr, "warmup", (double)c->sched.warmup);
    cJSON_AddNumberToObject(lr, "total_steps", (double)c->sched.total);
    cJSON_AddNumberToObject(lr, "next_lr", (double)lr_at(&c->sched, s->step));
    if (isfinite(s->loss)) cJSON_AddNumberToObject(j, "last_loss", s->loss);
    if (isfinite(s->val_loss)) cJSON_AddNumberToObject(j, "last_val_loss", s->val_loss);
    /* the only randomness of training is the data order (and FIM), a pure function of the loader's (seed, position) */
    cJSON_AddItemToObject(j, "data", data_state ? cJSON_Duplicate(data_state, 1) : cJSON_CreateNull());
    if (c->options) cJSON_AddItemToObject(j, "options", cJSON_Duplicate(c->options, 1));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    size_t n = strlen(text);
    char *out = sc_malloc(n + 2);
    memcpy(out, text, n);
    out[n] = '\n', out[n + 1] = 0;
    cJSON_free(text);
    return out;
}

/* 2^40 printed as such: the bound of every step count (train_options.h TRAIN_STEPS_MAX) */
static const char *fmt_bound(char *buf, size_t n, double v) {
    if (v == TRAIN_STEPS_MAX) snprintf(buf, n, "2^40");
    else if (v == STATE_EXACT_MAX) snprintf(buf, n, "2^53");
    else snprintf(buf, n, "%.10g", v);
    return buf;
}

/* Reads number field `name` of object o (under `parent` for the message) bounded to [lo, hi], an integer when
 * `integer`: the one place a trainer_state.json number enters, so nothing out of range is ever cast. */
static int get_num(const cJSON *o, const char *parent, const char *name, const char *path, double lo, double hi,
                   int integer, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    char field[96], a[32], b[32];
    snprintf(field, sizeof field, "%s%s%s", parent ? parent : "", parent ? "." : "", name);
    if (!cJSON_IsNumber(v)) return sc_fail("%s: \"%s\" is missing or not a number", path, field);
    double x = v->valuedouble;
    if (!(x >= lo && x <= hi))
        return sc_fail("%s: \"%s\" %.17g is out of range [%s, %s]", path, field, x, fmt_bound(a, sizeof a, lo),
                       fmt_bound(b, sizeof b, hi));
    if (integer && x != floor(x)) return sc_fail("%s: \"%s\" %.17g is not an integer", path, field, x);
    *out = x;
    return 0;
}

int train_state_from_json(const char *text, const char *path, train_state *s, lr_schedule *sched, cJSON **data,
                          cJSON **options) {
    memset(s, 0, sizeof *s);
    if (data) *data = NULL;
    if (options) *options = NULL;
    cJSON *j = cJSON_Parse(text);
    if (!j) return sc_fail("%s: not valid JSON", path);
    int rc = 0;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    double v = 0, x = 0;
    const double S = TRAIN_STEPS_MAX;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, STATE_FORMAT) != 0) {
        rc = sc_fail("%s: not a SmallCoder trainer state (format is not \"%s\")", path, STATE_FORMAT);
        goto done;
    }
    if ((rc = get_num(j, NULL, "version", path, 0, 1e9, 1, &v))) goto done;
    if (v != STATE_VERSION) {
        rc = sc_fail("%s: trainer state version %g, this build reads version %d", path, v, STATE_VERSION);
        goto done;
    }
    if ((rc = get_num(j, NULL, "step", path, 0, S, 1, &v))) goto done;
    s->step = (int64_t)v;
    if ((rc = get_num(j, NULL, "tokens", path, 0, STATE_EXACT_MAX, 1, &v))) goto done;
    s->tokens = (int64_t)v;
    if ((rc = get_num(j, NULL, "adamw_updates", path, 0, (double)s->step, 1, &v))) goto done; /* <= step */
    s->updates = (int64_t)v;
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(j, "loss_scale");
    if (!cJSON_IsObject(ls)) {
        rc = sc_fail("%s: \"loss_scale\" is missing", path);
        goto done;
    }
    if ((rc = get_num(ls, "loss_scale", "scale", path, LOSS_SCALE_MIN, LOSS_SCALE_MAX, 0, &v))) goto done;
    s->scaler.scale = (float)v;
    s->scaler.dynamic = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ls, "dynamic"));
    if ((rc = get_num(ls, "loss_scale", "good_steps", path, 0, S, 1, &v))) goto done;
    s->scaler.good_steps = (int64_t)v;
    if ((rc = get_num(ls, "loss_scale", "skipped_steps", path, 0, (double)s->step, 1, &v))) goto done;
    s->scaler.skipped = (int64_t)v;
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(j, "lr_schedule");
    if (!cJSON_IsObject(lr)) {
        rc = sc_fail("%s: \"lr_schedule\" is missing", path);
        goto done;
    }
    lr_schedule unused;
    if (!sched) sched = &unused; /* checked even when the caller takes the schedule from the options */
    {
        if ((rc = get_num(lr, "lr_schedule", "lr", path, 0, 10, 0, &v)) ||
            (rc = get_num(lr, "lr_schedule", "min_lr", path, 0, v, 0, &x)))
            goto done;
        sched->lr = (float)v, sched->min_lr = (float)x;
        if ((rc = get_num(lr, "lr_schedule", "warmup", path, 0, S, 1, &v)) ||
            (rc = get_num(lr, "lr_schedule", "total_steps", path, 1, S, 1, &x)))
            goto done;
        sched->warmup = (int64_t)v, sched->total = (int64_t)x;
    }
    const cJSON *ll = cJSON_GetObjectItemCaseSensitive(j, "last_loss");
    s->loss = cJSON_IsNumber(ll) ? ll->valuedouble : NAN;
    const cJSON *vl = cJSON_GetObjectItemCaseSensitive(j, "last_val_loss");
    s->val_loss = cJSON_IsNumber(vl) ? vl->valuedouble : NAN;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "data");
    if (data) {
        if (!cJSON_IsObject(d)) {
            rc = sc_fail("%s: field data (the data loader position) is missing", path);
            goto done;
        }
        *data = cJSON_Duplicate(d, 1);
    }
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "options");
    if (options && cJSON_IsObject(o)) *options = cJSON_Duplicate(o, 1);
done:
    cJSON_Delete(j);
    return rc;
}
