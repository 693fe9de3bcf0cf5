/* test_train_ckpt.c — checkpoints: save/load round trip (weights, moments, state, tokenizer), keep-last-N,
 * resolving --resume, interrupted saves left behind are ignored and cleaned, corrupted files give one clear error,
 * and a trainer resumed from a checkpoint continues the exact loss sequence (in process, synthetic data). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/check.h"
#include "train/checkpoint.h"
#include "host/config.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/model.h"
#include "host/threads.h"
#include "tests/train_synth.h"
#include "train/trainer.h"

static char root[256];

static int exists(const char *dir, const char *name) {
    char p[4200];
    struct stat sb;
    return stat(path_join(p, sizeof p, dir, name), &sb) == 0;
}

static void test_round_trip_and_keep(void) {
    sc_config cfg = synth_config();
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 1, 0.02f);
    int64_t n = m.nparams;
    float *ea = sc_malloc(sizeof(float) * (size_t)n), *eas = sc_malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) ea[i] = (float)i * 1e-3f, eas[i] = (float)(n - i) * 1e-6f;
    char run[512], tok[512], out[4096];
    snprintf(run, sizeof run, "%s/run", root);
    snprintf(tok, sizeof tok, "%s/tokenizer.json", root);
    mkdir(run, 0755);
    CHECK(atomic_write_file(tok, "{\"model\":{}}", 12) == 0);
    const char *state = "{\"format\":\"x\"}\n";
    checkpoint_data d = {&m, ea, eas, state, tok, NULL};
    for (int64_t step = 10; step <= 40; step += 10) {
        m.params[0] = (float)step;
        CHECK(checkpoint_save(run, step, &d, 2, out, sizeof out) == 0);
    }
    int64_t *steps;
    int cnt;
    CHECK(checkpoint_list(run, &steps, &cnt) == 0);
    CHECK(cnt == 2 && steps[0] == 30 && steps[1] == 40);
    free(steps);
    CHECK(strstr(out, "ckpt-40") != NULL);
    const char *files[] = {"config.json", "model.safetensors", "optimizer.safetensors", "tokenizer.json",
                           "trainer_state.json"};
    for (int i = 0; i < 5; i++) CHECK(exists(out, files[i]));
    CHECK(!exists(run, "ckpt-10") && !exists(run, "ckpt-20"));
    /* load */
    sc_model l;
    float *la, *las;
    char *st;
    CHECK(checkpoint_load(out, &l, &la, &las, &st) == 0);
    CHECK(l.nparams == n && l.params[0] == 40.0f);
    CHECK(memcmp(l.params + 1, m.params + 1, sizeof(float) * (size_t)(n - 1)) == 0);
    CHECK(memcmp(la, ea, sizeof(float) * (size_t)n) == 0 && memcmp(las, eas, sizeof(float) * (size_t)n) == 0);
    CHECK(strcmp(st, state) == 0);
    free(la), free(las), free(st);
    model_free(&l);
    /* resolve: the run directory -> its newest checkpoint; a checkpoint -> itself and its parent */
    char ck[4096], rd[4096];
    CHECK(checkpoint_resolve(run, ck, sizeof ck, rd, sizeof rd) == 0);
    CHECK(strcmp(ck, out) == 0 && strcmp(rd, run) == 0);
    CHECK(checkpoint_resolve(out, ck, sizeof ck, rd, sizeof rd) == 0);
    CHECK(strcmp(ck, out) == 0 && strcmp(rd, run) == 0);
    CHECK_FAILS_WITH(checkpoint_resolve(root, ck, sizeof ck, rd, sizeof rd), "no checkpoint found");
    /* an interrupted save: a temp dir and a ckpt dir without trainer_state.json are not checkpoints */
    char p[4200];
    snprintf(p, sizeof p, "%s/.tmp-ckpt-50-123", run);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/ckpt-60", run);
    mkdir(p, 0755);
    CHECK(checkpoint_list(run, &steps, &cnt) == 0);
    CHECK(cnt == 2 && steps[1] == 40);
    free(steps);
    char junk[4200];
    snprintf(junk, sizeof junk, "%s/loss.svg.tmp.4242", run);
    CHECK(atomic_write_file(junk, "x", 1) == 0);
    snprintf(junk, sizeof junk, "%s/notes.tmp.1", run); /* not ours: kept */
    CHECK(atomic_write_file(junk, "x", 1) == 0);
    checkpoint_clean_temp(run);
    CHECK(!exists(run, ".tmp-ckpt-50-123"));
    CHECK(!exists(run, "loss.svg.tmp.4242") && exists(run, "notes.tmp.1"));
    rmdir(p);
    /* a save that cannot happen (run dir is a file) fails cleanly */
    char bad[4096];
    CHECK_FAILS_WITH(checkpoint_save(tok, 70, &d, 2, bad, sizeof bad), "cannot create");
    /* corrupted optimizer state: one clear error naming the file */
    snprintf(p, sizeof p, "%s/ckpt-40/optimizer.safetensors", run);
    CHECK(truncate(p, 1000) == 0);
    CHECK_FAILS_WITH(checkpoint_load(out, &l, &la, &las, &st), "optimizer.safetensors");
    /* moments of another shape */
    sc_config other = cfg;
    other.intermediate_size = 96;
    sc_model o;
    model_create(&o, &other);
    float *oa = sc_calloc((size_t)o.nparams, sizeof(float));
    checkpoint_data od = {&o, oa, oa, state, NULL, NULL};
    char run2[512];
    snprintf(run2, sizeof run2, "%s/run2", root);
    mkdir(run2, 0755);
    CHECK(checkpoint_save(run2, 1, &od, 0, out, sizeof out) == 0);
    snprintf(p, sizeof p, "%s/ckpt-1/optimizer.safetensors", run2);
    char q[4200];
    snprintf(q, sizeof q, "%s/ckpt-40/optimizer.safetensors", run);
    CHECK(rename(p, q) == 0);
    snprintf(p, sizeof p, "%s/ckpt-40", run);
    CHECK_FAILS_WITH(checkpoint_load(p, &l, &la, &las, &st), "elements");
    free(oa);
    model_free(&o);
    free(ea), free(eas);
    model_free(&m);
}

/* A directory already named ckpt-<step> is replaced, never kept; steps outside [0, 2^40] are refused; --keep
 * prunes the largest names a run can write; checkpoint_name_step reads only ckpt-<digits> (issue 14, item 1). */
static void test_names_agree_with_content(void) {
    sc_config cfg = synth_config();
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 3, 0.02f);
    float *ea = sc_calloc((size_t)m.nparams, sizeof(float)), *eas = sc_calloc((size_t)m.nparams, sizeof(float));
    char run[512], stale[600], out[4096], p[4200];
    snprintf(run, sizeof run, "%s/names", root);
    mkdir(run, 0755);
    checkpoint_data d = {&m, ea, eas, "{\"format\":\"new\"}\n", NULL, NULL};
    /* a stale ckpt-7 of another run (complete, other state) must not survive a save of step 7 */
    snprintf(stale, sizeof stale, "%s/ckpt-7", run);
    mkdir(stale, 0755);
    CHECK(atomic_write_file(path_join(p, sizeof p, stale, "trainer_state.json"), "{\"format\":\"old\"}\n", 17) == 0);
    CHECK(atomic_write_file(path_join(p, sizeof p, stale, "stale-file"), "x", 1) == 0);
    CHECK(checkpoint_save(run, 7, &d, 0, out, sizeof out) == 0);
    char *text;
    size_t len;
    CHECK(file_read_all(path_join(p, sizeof p, stale, "trainer_state.json"), &text, &len) == 0);
    CHECKF(strstr(text, "new") != NULL, "ckpt-7 still holds the old trainer state: %s", text);
    free(text);
    CHECK(!exists(stale, "stale-file") && exists(stale, "model.safetensors"));
    /* bounds */
    CHECK(checkpoint_save(run, -1, &d, 0, out, sizeof out) != 0 && strstr(sc_error(), "out of range"));
    CHECK(checkpoint_save(run, (int64_t)1 << 41, &d, 0, out, sizeof out) != 0);
    /* keep 1 with the largest step: everything older is pruned */
    CHECK(checkpoint_save(run, (int64_t)1 << 40, &d, 1, out, sizeof out) == 0);
    int64_t *steps;
    int cnt;
    CHECK(checkpoint_list(run, &steps, &cnt) == 0);
    CHECK(cnt == 1 && steps[0] == (int64_t)1 << 40);
    free(steps);
    CHECK(checkpoint_name_step("/x/run/ckpt-12") == 12 && checkpoint_name_step("run/ckpt-3/") == 3);
    CHECK(checkpoint_name_step("run/final") == -1 && checkpoint_name_step("run/ckpt--5") == -1);
    CHECK(checkpoint_name_step("ckpt-") == -1 && checkpoint_name_step("ckpt-1x") == -1);
    free(ea), free(eas);
    model_free(&m);
}

/* trainer_state.json numbers are bounded where parsed; the message names the file and the field (item 2) */
static void test_state_bounds(void) {
    train_state st;
    static const struct { const char *field, *value, *want; } bad[] = {
        {"step", "1e20", "\"step\" 1e+20 is out of range [0, 2^40]"},
        {"step", "-1", "\"step\" -1 is out of range"},
        {"step", "2.5", "\"step\" 2.5 is not an integer"},
        {"tokens", "1e300", "\"tokens\" 1.0000000000000001e+300 is out of range [0, 2^53]"},
        {"adamw_updates", "11", "\"adamw_updates\" 11 is out of range [0, 10]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "{\"format\":\"smallcoder-trainer-state\",\"version\":1,\"step\":%s,\"tokens\":%s,"
                 "\"adamw_updates\":%s,\"loss_scale\":{\"scale\":1,\"dynamic\":false,\"good_steps\":0,"
                 "\"skipped_steps\":0},\"lr_schedule\":{\"lr\":0.001,\"min_lr\":0.0001,\"warmup\":1,"
                 "\"total_steps\":20},\"data\":{}}",
                 strcmp(bad[i].field, "step") ? "10" : bad[i].value, strcmp(bad[i].field, "tokens") ? "640" : bad[i].value,
                 strcmp(bad[i].field, "adamw_updates") ? "10" : bad[i].value);
        CHECK(train_state_from_json(text, "R/ckpt-10/trainer_state.json", &st, NULL, NULL, NULL) != 0);
        CHECKF(strstr(sc_error(), "R/ckpt-10/trainer_state.json: ") && strstr(sc_error(), bad[i].want),
               "%s: got '%s'", bad[i].field, sc_error());
    }
}

/* losses of steps [from, to) of a run of `total` steps; resumes from run_dir's checkpoint when asked */
static void run_steps(const char *run_dir, int64_t total, int64_t stop_at, int resume, double *losses) {
    sc_config cfg = synth_config();
    sc_model m;
    train_state st, *rs = NULL;
    float *ea = NULL, *eas = NULL;
    char *text = NULL;
    cJSON *data = NULL;
    if (resume) {
        char ck[4096];
        CHECK(checkpoint_resolve(run_dir, ck, sizeof ck, NULL, 0) == 0);
        CHECK(checkpoint_load(ck, &m, &ea, &eas, &text) == 0);
        CHECK(train_state_from_json(text, ck, &st, NULL, &data, NULL) == 0);
        rs = &st;
    } else {
        model_create(&m, &cfg);
        model_init_weights(&m, 2, 0.05f);
    }
    train_backend b;
    backend_cpu_open(&b, &m, 16, 1);
    if (ea) b.write_state(&b, ea, eas);
    batch_source src, val;
    synth_open(&src, 4, 16, (uint32_t)cfg.vocab_size, -1);
    synth_open(&val, 99, 16, (uint32_t)cfg.vocab_size, -1);
    if (data) CHECK(src.state_from_json(src.ctx, data) == 0);
    train_config c;
    memset(&c, 0, sizeof c);
    c.seq = 16, c.micro_batch = 2, c.grad_accum = 2;
    c.sched = (lr_schedule){3e-3f, 3e-4f, 2, total};
    c.weight_decay = 0.1f, c.clip = 1.0f, c.beta1 = 0.9f, c.beta2 = 0.95f, c.eps = 1e-8f;
    c.eval_every = 3, c.eval_tokens = 64, c.save_every = 4, c.keep = 2, c.stop_at = stop_at, c.run_dir = run_dir;
    trainer t;
    CHECK(trainer_open(&t, &b, &src, &val, &c, rs) == 0);
    int64_t from = t.st.step;
    int64_t end = stop_at ? stop_at : total;
    for (int64_t s = from; s < end; s++) {
        CHECK(trainer_step(&t) == 0);
        losses[s] = t.st.loss;
        if (s == 4) { /* an evaluation in the middle must not disturb training */
            double vl;
            int64_t vt;
            CHECK(trainer_evaluate(&b, &val, 2, 64, &vl, &vt) == 0 && vt == 64);
        }
    }
    CHECK(trainer_save(&t) == 0);
    trainer_close(&t);
    batch_source_close(&src);
    batch_source_close(&val);
    backend_close(&b);
    model_free(&m);
    free(ea), free(eas), free(text);
    cJSON_Delete(data);
}

static void test_resume_identical(void) {
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/straight", root);
    snprintf(b, sizeof b, "%s/resumed", root);
    mkdir(a, 0755), mkdir(b, 0755);
    double la[12] = {0}, lb[12] = {0};
    run_steps(a, 12, 0, 0, la);
    run_steps(b, 12, 5, 0, lb);
    run_steps(b, 12, 0, 1, lb);
    for (int i = 0; i < 12; i++) {
        if (la[i] != lb[i]) fprintf(stderr, "step %d: %.17g vs %.17g\n", i, la[i], lb[i]);
        CHECK(la[i] == lb[i]);
    }
    CHECK(la[11] < la[0]);
}

int main(void) {
    sc_set_threads(2);
    snprintf(root, sizeof root, "/tmp/sc_test_train_ckpt.%d", (int)getpid());
    mkdir(root, 0755);
    test_round_trip_and_keep();
    test_names_agree_with_content();
    test_state_bounds();
    test_resume_identical();
    checkpoint_remove_tree(root);
    return check_result("test_train_ckpt");
}
