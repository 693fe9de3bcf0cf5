/* cmd_teacher.c — `smallcoder teacher`: runs a teacher model over token shards and writes one .kd per shard (top-k
 * ids, FP16 logits, FP32 logsumexp per position; kd_format.h). Resumable: a .kd that already matches its shard
 * and the requested k / temperature / teacher / windows is skipped; every file is written under a temp name. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/clock.h"
#include "host/progress.h"
#include "host/args.h"
#include "host/command.h"
#include "host/device.h"
#include "host/engine.h"
#include "host/error.h"
#include "host/fileio.h"
#include "distill/kd_dir.h"
#include "distill/kd_format.h"
#include "distill/kd_teacher.h"
#include "data/tokenizer.h"

typedef struct {
    progress p;
    uint64_t base, total;  /* tokens of finished shards, of all shards to do */
    int shard, shards;
} teacher_progress;

/* "teacher:  42.0%  shard 2/5  120000/300000 tokens  950 tok/s  ETA 3m09s" */
static void teacher_progress_cb(void *ctx, uint64_t done) {
    teacher_progress *t = ctx;
    uint64_t d = t->base + done;
    if (!progress_update(&t->p, (double)d, (double)t->total, 0)) return;
    char eta[32];
    progress_draw(&t->p, "teacher: %5.1f%%  shard %d/%d  %llu/%llu tokens  %.0f tok/s  ETA %s",
                  100.0 * (double)d / fmax((double)t->total, 1), t->shard, t->shards, (unsigned long long)d,
                  (unsigned long long)t->total, t->p.rate, progress_duration(eta, sizeof eta, t->p.eta));
}

/* Whether kd_path is a finished .kd for this shard with the requested parameters. */
static int teacher_done(const char *kd_path, const char *shard_path, const kd_header *want) {
    if (access(kd_path, F_OK) != 0) return 0;
    kd_reader *r;
    shard_reader *s;
    if (kd_open(&r, kd_path)) return 0;
    int ok = 0;
    if (!shard_open(&s, shard_path)) {
        const kd_header *h = kd_info(r);
        ok = !kd_check_shard(r, s) && h->k == want->k && h->temperature == want->temperature &&
             h->context == want->context && h->overlap == want->overlap && !strcmp(h->teacher, want->teacher);
        shard_close(s);
    }
    kd_close(r);
    return ok;
}

int cmd_teacher(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *out = NULL, *split = "train", *name = NULL;
    sc_enum precision = {ENGINE_PRECISION_AUTO, engine_precision_names};
    /* cpu by default: the FP32 model whose .kd files the reference tests compare with PyTorch's bit for bit */
    sc_enum device = {DEVICE_CPU, device_names};
    int top_k = 32, context = 0, overlap = -1, threads = 0, quiet = 0;
    float temperature = 1.0f;
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &model_dir, "teacher model directory (config.json + model.safetensors [+ tokenizer.json])", 1},
        {"data", 'd', SC_ARG_STR, &data, "directory of token shards (*.tok)", 1},
        {"out", 'o', SC_ARG_STR, &out, "directory for the .kd files (created)", 1},
        {"top-k", 'k', SC_ARG_INT, &top_k, "teacher logits kept per position", 0},
        {"temperature", 0, SC_ARG_FLOAT, &temperature, "stored logits are the teacher's divided by this", 0},
        {"context", 0, SC_ARG_INT, &context, "tokens per teacher window (0 = the teacher's max_position_embeddings)", 0},
        {"overlap", 0, SC_ARG_INT, &overlap, "tokens each window (but the first) re-reads as context only (-1 = context/4)", 0},
        {"split", 0, SC_ARG_STR, &split, "shards to process: train, val or all", 0},
        {"name", 0, SC_ARG_STR, &name, "teacher name recorded in the headers (default: the model directory's name)", 0},
        {"device", 0, SC_ARG_ENUM, &device, "cpu: the FP32 CPU model; cuda: the CUDA inference engine (FP16/INT8); auto: cuda when there is a device", 0},
        {"precision", 0, SC_ARG_ENUM, &precision, "CUDA engine weights (as complete --precision)", 0},
        SC_ARG_THREADS(&threads),
        {"quiet", 'q', SC_ARG_FLAG, &quiet, "no progress line", 0},
    };
    sc_cli cli = {"smallcoder teacher", "--model DIR --data SHARD_DIR --out KD_DIR [options]",
                  "Runs the teacher over every shard in windows of --context tokens (consecutive windows overlap by\n"
                  "--overlap tokens, so every position past the first window has at least that much context) and\n"
                  "writes KD_DIR/<shard>.kd: per position the top-k ids, their FP16 logits and the FP32 logsumexp.\n"
                  "Finished shards are skipped, so an interrupted run continues where it stopped.",
                  args, sizeof args / sizeof args[0], 0, 0};
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS, {"temperature", 1e-3, 1e3}, {"context", 0, 1 << 20},
                                          {"overlap", -1, 1 << 20}};
    sc_command cmd = {.cli = &cli, SC_COMMAND_RANGES(ranges), .device = &device, .auto_prefers_cuda = 1,
                      .threads = &threads};
    if (sc_command_parse(&cmd, argc, argv) || sc_command_setup(&cmd)) return cmd.status;
    int use_cuda = cmd.use_cuda;
    if (!(temperature > 0) || !isfinite(temperature)) {
        fprintf(stderr, "smallcoder teacher: --temperature must be positive, got %g\n", temperature);
        return 2;
    }
    sc_model m;
    memset(&m, 0, sizeof m);
    sc_weights w; /* --device cuda: the engine's weights (FP32 or INT8 directories) */
    memset(&w, 0, sizeof w);
    sc_engine e;
    memset(&e, 0, sizeof e);
    char **names = NULL;
    int nshards = 0, rc = -1, made_out = 0, have_w = 0, have_e = 0;
    kd_teacher_run run = {0};
    if (use_cuda ? weights_load(&w, model_dir) : model_load(&m, model_dir)) goto done;
    have_w = use_cuda;
    const sc_config *tcfg = use_cuda ? &w.cfg : &m.cfg;
    const int V = tcfg->vocab_size;
    if (top_k < 1 || top_k > V || top_k > KD_MAX_K) {
        sc_fail("--top-k %d: must be between 1 and the teacher's vocabulary size %d (at most %d)", top_k, V, KD_MAX_K);
        goto done;
    }
    if (context <= 0 || context > tcfg->max_position_embeddings) context = tcfg->max_position_embeddings;
    if (overlap < 0) overlap = context / 4;
    if (overlap >= context) {
        sc_fail("--overlap %d must be smaller than the window (--context %d)", overlap, context);
        goto done;
    }
    kd_header want;
    memset(&want, 0, sizeof want);
    want.k = (uint32_t)top_k, want.temperature = temperature;
    want.context = (uint32_t)context, want.overlap = (uint32_t)overlap;
    if (!name) {
        const char *e = model_dir + strlen(model_dir);
        while (e > model_dir && e[-1] == '/') e--;
        const char *b = e;
        while (b > model_dir && b[-1] != '/') b--;
        snprintf(want.teacher, sizeof want.teacher, "%.*s", (int)(e - b), b);
    } else {
        snprintf(want.teacher, sizeof want.teacher, "%s", name);
    }
    /* the teacher's tokenizer, when its directory has one, must be the shards' */
    char tpath[4096];
    uint64_t teacher_hash = 0;
    path_join(tpath, sizeof tpath, model_dir, "tokenizer.json");
    if (access(tpath, R_OK) == 0) {
        sc_tokenizer *tok;
        if (tokenizer_load(&tok, tpath)) goto done;
        teacher_hash = tokenizer_hash(tok);
        tokenizer_free(tok);
    }
    if ((nshards = kd_dir_list_shards(data, split, &names)) < 0) goto done;
    if (nshards == 0) {
        sc_fail("%s: no %s*.tok shards", data, strcmp(split, "all") ? split : "");
        goto done;
    }
    if (mkdir(out, 0777) == 0) made_out = 1;
    else if (access(out, W_OK) != 0) {
        sc_fail("%s: cannot create the output directory (%s)", out, strerror(errno));
        goto done;
    }
    atomic_remove_stale(out, ".kd"); /* half-written .kd files of a killed run */
    teacher_progress pg = {.shards = nshards};
    progress_start(&pg.p, !quiet, PROGRESS_EVERY_TTY, PROGRESS_EVERY_LOG);
    char spath[4096], kpath[4096];
    int todo[4096] = {0}, skipped = 0;
    if (nshards > 4096) {
        sc_fail("%s: %d shards; this build handles at most 4096 per run", data, nshards);
        goto done;
    }
    for (int i = 0; i < nshards; i++) {
        path_join(spath, sizeof spath, data, names[i]);
        shard_reader *s;
        if (shard_open(&s, spath)) goto done;
        uint64_t sh_hash = shard_info(s)->tokenizer_hash, n = shard_info(s)->token_count;
        shard_close(s);
        if (teacher_hash && sh_hash != teacher_hash) {
            sc_fail("%s: tokenized with tokenizer hash %016llx, but the teacher's %s has %016llx: teacher and "
                    "student must share one tokenizer", spath, (unsigned long long)sh_hash, tpath,
                    (unsigned long long)teacher_hash);
            goto done;
        }
        kd_dir_kd_path(kpath, sizeof kpath, out, names[i]);
        todo[i] = !teacher_done(kpath, spath, &want);
        if (todo[i]) pg.total += n;
        else skipped++;
    }
    if (use_cuda) {
        sc_engine_opts o = {.device = "cuda", .precision = engine_precision_names[precision.value], .n_ctx = context,
                            .n_seqs = 1, .threads = cmd.nthreads};
        if (engine_open(&e, &w, &o) == 0) {
            have_e = 1;
        } else if (device.value == DEVICE_CUDA || model_load(&m, model_dir)) {
            goto done;
        } else {
            fprintf(stderr, "note: --device auto: %s; the teacher runs on the CPU\n", sc_error());
            use_cuda = 0;
        }
    }
    if (!quiet)
        fprintf(stderr, "teacher %s (%lld parameters, %s): %d shard(s), %d already done; top-%d, temperature %g, "
                        "windows of %d tokens overlapping by %d\n", want.teacher, (long long)config_param_count(tcfg),
                have_e ? (e.precision && !strcmp(e.precision, "int8") ? "CUDA engine, INT8" : "CUDA engine, FP16")
                       : "CPU model, FP32", nshards, skipped, top_k, temperature, context, overlap);
    if (have_e) kd_teacher_run_init_engine(&run, &e, context);
    else kd_teacher_run_init(&run, &m, context);
    uint64_t tokens = 0, bytes = 0;
    double t0 = clock_now();
    for (int i = 0; i < nshards; i++) {
        if (!todo[i]) continue;
        path_join(spath, sizeof spath, data, names[i]);
        kd_dir_kd_path(kpath, sizeof kpath, out, names[i]);
        pg.shard = i + 1;
        uint64_t b;
        if (kd_teacher_write_shard(&run, spath, kpath, &want, teacher_progress_cb, &pg, &b)) goto done;
        kd_reader *r;
        if (kd_open(&r, kpath)) goto done;
        uint64_t n = kd_info(r)->token_count;
        kd_close(r);
        pg.base += n, tokens += n, bytes += b;
    }
    progress_finish(&pg.p);
    double dt = clock_now() - t0;
    printf("teacher: wrote %d .kd file(s) (%d skipped): %llu tokens, %llu bytes, %.1f bytes/token at k=%d, "
           "%.0f tokens/s\n", nshards - skipped, skipped, (unsigned long long)tokens, (unsigned long long)bytes,
           tokens ? (double)bytes / tokens : 0.0, top_k, dt > 0 ? tokens / dt : 0.0);
    rc = 0;
done:
    if (rc) sc_command_fail(&cmd);
    if (rc && made_out) rmdir(out); /* only when nothing was finished in it */
    kd_teacher_run_free(&run);
    if (have_e) engine_close(&e);
    if (have_w) weights_free(&w);
    if (names) kd_dir_free_names(names, nshards);
    if (m.params) model_free(&m);
    return rc ? 1 : 0;
}
