/* checkpoint.c — see checkpoint.h. Old checkpoints are first renamed to .trash-* and then deleted, so a crash
 * while deleting can never leave a ckpt-<step> that looks complete but is missing files. */
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/error.h"
#include "host/fileio.h"
#include "host/safetensors.h"

#define CKPT_PREFIX "ckpt-"
#define CKPT_TEMP_PREFIX ".tmp-ckpt-"
#define CKPT_TRASH_PREFIX ".trash-"
#define CKPT_STEP_MAX 1099511627776LL /* 2^40, train_options.h TRAIN_STEPS_MAX */

static void slow_save_pause(void) {
    const char *s = getenv(CHECKPOINT_SLOW_SAVE_ENV);
    long ms = s ? atol(s) : 0;
    if (ms > 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)type, (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int checkpoint_remove_tree(const char *path) {
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return sc_fail("%s: cannot remove (%s)", path, strerror(errno));
    return 0;
}

/* "ckpt-<digits>" -> step, else -1 */
static int64_t parse_ckpt_name(const char *name) {
    size_t k = strlen(CKPT_PREFIX);
    if (strncmp(name, CKPT_PREFIX, k) != 0 || !name[k]) return -1;
    int64_t v = 0;
    for (const char *p = name + k; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

int64_t checkpoint_name_step(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    size_t k = strlen(buf);
    while (k > 1 && buf[k - 1] == '/') buf[--k] = 0;
    const char *base = strrchr(buf, '/');
    return parse_ckpt_name(base ? base + 1 : buf);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int checkpoint_list(const char *run_dir, int64_t **steps, int *count) {
    *steps = NULL, *count = 0;
    DIR *d = opendir(run_dir);
    if (!d) return errno == ENOENT ? 0 : sc_fail("%s: cannot list (%s)", run_dir, strerror(errno));
    int n = 0, cap = 16;
    int64_t *v = sc_malloc(sizeof(int64_t) * (size_t)cap);
    char p[4096], sp[4200];
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t s = parse_ckpt_name(e->d_name);
        if (s < 0) continue;
        path_join(p, sizeof p, run_dir, e->d_name);
        if (!is_file(path_join(sp, sizeof sp, p, "trainer_state.json"))) continue;
        if (n == cap) v = realloc(v, sizeof(int64_t) * (size_t)(cap *= 2));
        if (!v) {
            closedir(d);
            return sc_fail("out of memory listing %s", run_dir);
        }
        v[n++] = s;
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    *steps = v, *count = n;
    return 0;
}

/* "metrics.jsonl.tmp.<pid>" / "loss.svg.tmp.<pid>": host/fileio.c's temporary names, left by a crash mid-write */
static int is_atomic_temp(const char *name) {
    static const char *const own[] = {"metrics.jsonl.tmp.", "loss.svg.tmp.", NULL};
    for (int i = 0; own[i]; i++) {
        size_t k = strlen(own[i]);
        if (strncmp(name, own[i], k) != 0 || !name[k]) continue;
        const char *q = name + k;
        while (*q >= '0' && *q <= '9') q++;
        if (!*q) return 1;
    }
    return 0;
}

void checkpoint_clean_temp(const char *run_dir) {
    DIR *d = opendir(run_dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, CKPT_TEMP_PREFIX, strlen(CKPT_TEMP_PREFIX)) == 0 ||
            strncmp(e->d_name, CKPT_TRASH_PREFIX, strlen(CKPT_TRASH_PREFIX)) == 0 || is_atomic_temp(e->d_name))
            checkpoint_remove_tree(path_join(p, sizeof p, run_dir, e->d_name));
    }
    closedir(d);
}

static int prune(const char *run_dir, int keep) {
    int64_t *steps;
    int n;
    if (keep <= 0 || checkpoint_list(run_dir, &steps, &n)) return 0;
    int rc = 0;
    for (int i = 0; i < n - keep && !rc; i++) {
        char name[64], from[4096], to[4096];
        snprintf(name, sizeof name, CKPT_PREFIX "%lld", (long long)steps[i]);
        path_join(from, sizeof from, run_dir, name);
        snprintf(name, sizeof name, CKPT_TRASH_PREFIX CKPT_PREFIX "%lld", (long long)steps[i]);
        path_join(to, sizeof to, run_dir, name);
        if (rename(from, to) != 0) rc = sc_fail("%s: cannot retire old checkpoint (%s)", from, strerror(errno));
        else rc = checkpoint_remove_tree(to);
    }
    free(steps);
    if (!rc) rc = fsync_dir(run_dir);
    return rc;
}

static int write_optimizer(const checkpoint_data *d, const char *path) {
    const sc_param *table = d->lora ? d->lora->table : d->model->table;
    int n = d->lora ? d->lora->ntensors : d->model->ntensors;
    st_entry *e = sc_calloc((size_t)(2 * n), sizeof(st_entry));
    char (*names)[96] = sc_calloc((size_t)(2 * n), sizeof *names);
    for (int i = 0; i < 2 * n; i++) {
        const sc_param *p = &table[i % n];
        snprintf(names[i], sizeof names[i], "%s%s", p->name, i < n ? ".exp_avg" : ".exp_avg_sq");
        e[i] = (st_entry){.name = names[i], .dtype = ST_F32, .ndim = p->ndim,
                          .data = (i < n ? d->exp_avg : d->exp_avg_sq) + p->offset};
        e[i].shape[0] = p->shape[0];
        e[i].shape[1] = p->shape[1];
    }
    static const char *const metadata[] = {"format", "pt", "optimizer", "AdamW", NULL};
    int rc = st_write(path, e, 2 * n, metadata);
    free(e), free(names);
    return rc;
}

static int copy_file(const char *from, const char *to) {
    char *data;
    size_t len;
    if (file_read_all(from, &data, &len)) return -1;
    int rc = atomic_write_file(to, data, len);
    free(data);
    return rc;
}

int checkpoint_save(const char *run_dir, int64_t step, const checkpoint_data *d, int keep, char *out, size_t n) {
    char name[64], final[4096], tmp[4096], p[4200];
    snprintf(name, sizeof name, CKPT_PREFIX "%lld", (long long)step);
    path_join(final, sizeof final, run_dir, name);
    snprintf(out, n, "%s", final);
    if (step < 0 || step > CKPT_STEP_MAX) return sc_fail("checkpoint step %lld is out of range [0, 2^40]", (long long)step);
    snprintf(name, sizeof name, CKPT_TEMP_PREFIX "%lld-%d", (long long)step, (int)getpid());
    path_join(tmp, sizeof tmp, run_dir, name);
    checkpoint_remove_tree(tmp);
    if (mkdir(tmp, 0755) != 0) return sc_fail("%s: cannot create (%s)", tmp, strerror(errno));
    int rc = 0;
    slow_save_pause();
    if (d->lora) {
        rc = lora_save(d->lora, tmp);
    } else {
        rc = config_save(&d->model->cfg, path_join(p, sizeof p, tmp, "config.json"));
        if (!rc) slow_save_pause(), rc = model_save_block(d->model, d->model->params, path_join(p, sizeof p, tmp, "model.safetensors"));
    }
    if (!rc) slow_save_pause(), rc = write_optimizer(d, path_join(p, sizeof p, tmp, "optimizer.safetensors"));
    if (!rc && d->tokenizer) slow_save_pause(), rc = copy_file(d->tokenizer, path_join(p, sizeof p, tmp, "tokenizer.json"));
    /* trainer_state.json last: a directory holding it is complete */
    if (!rc) slow_save_pause(), rc = atomic_write_file(path_join(p, sizeof p, tmp, "trainer_state.json"),
                                                      d->state_json, strlen(d->state_json));
    if (!rc) rc = fsync_dir(tmp);
    char old[4096] = "";
    if (!rc && is_dir(final)) { /* a stale directory of this name: set aside, removed once the new one is in place */
        snprintf(name, sizeof name, CKPT_TRASH_PREFIX CKPT_PREFIX "%lld-%d", (long long)step, (int)getpid());
        path_join(old, sizeof old, run_dir, name);
        checkpoint_remove_tree(old);
        if (rename(final, old) != 0) rc = sc_fail("%s: cannot set the old directory aside (%s)", final, strerror(errno));
    }
    if (!rc && rename(tmp, final) != 0) {
        rc = sc_fail("%s: cannot rename from %s (%s)", final, tmp, strerror(errno));
        if (old[0]) rename(old, final); /* put the old one back: a failed save changes nothing */
    } else if (!rc && old[0]) {
        rc = checkpoint_remove_tree(old);
    }
    if (!rc) rc = fsync_dir(run_dir);
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", sc_error());
        checkpoint_remove_tree(tmp);
        return sc_fail("saving checkpoint %s: %s", final, msg);
    }
    return prune(run_dir, keep);
}

int checkpoint_resolve(const char *path, char *ckpt, size_t n, char *run_dir, size_t rn) {
    char p[4200];
    if (!is_dir(path)) return sc_fail("%s: no such directory", path);
    if (is_file(path_join(p, sizeof p, path, "trainer_state.json"))) {
        snprintf(ckpt, n, "%s", path);
        if (run_dir) {
            snprintf(run_dir, rn, "%s", path);
            size_t k = strlen(run_dir);
            while (k > 1 && run_dir[k - 1] == '/') run_dir[--k] = 0;
            char *slash = strrchr(run_dir, '/');
            if (!slash) snprintf(run_dir, rn, ".");
            else if (slash == run_dir) run_dir[1] = 0;
            else *slash = 0;
        }
        return 0;
    }
    int64_t *steps;
    int cnt;
    if (checkpoint_list(path, &steps, &cnt)) return -1;
    if (cnt == 0) {
        free(steps);
        return sc_fail("%s: no checkpoint found (neither trainer_state.json nor a ckpt-<step>/ directory)", path);
    }
    char name[64];
    snprintf(name, sizeof name, CKPT_PREFIX "%lld", (long long)steps[cnt - 1]);
    free(steps);
    path_join(ckpt, n, path, name);
    if (run_dir) snprintf(run_dir, rn, "%s", path);
    return 0;
}

static int read_moment(const st_file *f, const sc_param *p, const char *suffix, float *dst) {
    char name[128];
    snprintf(name, sizeof name, "%s%s", p->name, suffix);
    const st_tensor *t = st_find(f, name);
    if (!t) return sc_fail("%s: missing tensor %s", f->path, name);
    if (t->dtype != ST_F32) return sc_fail("%s: tensor %s is %s, expected F32", f->path, name, st_dtype_name(t->dtype));
    if (t->numel != p->numel || t->ndim != p->ndim)
        return sc_fail("%s: tensor %s has %lld elements in %d dims, the model's %s has %lld in %d", f->path, name,
                       (long long)t->numel, t->ndim, p->name, (long long)p->numel, p->ndim);
    return st_read_f32(f, t, dst);
}

/* Both AdamW moments of every tensor of table (ntensors, nparams floats in all) from path into new buffers: the file
 * must hold exactly those 2 x ntensors tensors. `what` names the tensors in the message. */
static int read_moments(const char *path, const sc_param *table, int ntensors, int64_t nparams, const char *what,
                        float **exp_avg, float **exp_avg_sq) {
    st_file f;
    if (st_open(&f, path)) return -1;
    int rc = 0;
    if (f.ntensors != 2 * ntensors)
        rc = sc_fail("%s: holds %d tensors, expected %d (exp_avg and exp_avg_sq of %d %s)", f.path, f.ntensors,
                     2 * ntensors, ntensors, what);
    size_t n = (size_t)(nparams ? nparams : 1);
    *exp_avg = sc_malloc(sizeof(float) * n);
    *exp_avg_sq = sc_malloc(sizeof(float) * n);
    for (int i = 0; i < ntensors && !rc; i++) {
        const sc_param *t = &table[i];
        rc = read_moment(&f, t, ".exp_avg", *exp_avg + t->offset);
        if (!rc) rc = read_moment(&f, t, ".exp_avg_sq", *exp_avg_sq + t->offset);
    }
    st_close(&f);
    return rc;
}

int checkpoint_load(const char *dir, sc_model *m, float **exp_avg, float **exp_avg_sq, char **state_json) {
    char p[4200];
    size_t len;
    *exp_avg = *exp_avg_sq = NULL, *state_json = NULL;
    if (file_read_all(path_join(p, sizeof p, dir, "trainer_state.json"), state_json, &len)) return -1;
    if (model_load(m, dir)) {
        free(*state_json), *state_json = NULL;
        return -1;
    }
    if (!read_moments(path_join(p, sizeof p, dir, "optimizer.safetensors"), m->table, m->ntensors, m->nparams,
                      "parameters", exp_avg, exp_avg_sq))
        return 0;
    free(*exp_avg), free(*exp_avg_sq), free(*state_json);
    *exp_avg = *exp_avg_sq = NULL, *state_json = NULL;
    model_free(m);
    return -1;
}

int checkpoint_is_lora(const char *dir) {
    char p[4200];
    return is_file(path_join(p, sizeof p, dir, "adapter_config.json"));
}

int checkpoint_load_lora(const char *dir, const sc_config *base, const char *base_name, sc_lora *ad, float **exp_avg,
                         float **exp_avg_sq, char **state_json) {
    char p[4200];
    size_t len;
    *exp_avg = *exp_avg_sq = NULL, *state_json = NULL;
    memset(ad, 0, sizeof *ad);
    if (!checkpoint_is_lora(dir)) return 1;
    if (file_read_all(path_join(p, sizeof p, dir, "trainer_state.json"), state_json, &len)) return -1;
    if (lora_load(ad, dir, base, base_name)) goto fail;
    if (!read_moments(path_join(p, sizeof p, dir, "optimizer.safetensors"), ad->table, ad->ntensors, ad->nparams,
                      "adapter tensors", exp_avg, exp_avg_sq))
        return 0;
fail:
    free(*exp_avg), free(*exp_avg_sq), free(*state_json);
    *exp_avg = *exp_avg_sq = NULL, *state_json = NULL;
    lora_free(ad);
    return -1;
}
