/* cmd_train.c — `smallcoder train`: sets up model, data, backend and trainer from the options (fresh run or
 * --resume), prints the memory plan, and runs. The loop itself lives in trainer.c. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/args.h"
#include "train/backend.h"
#include "train/checkpoint.h"
#include "train/commands_train.h"
#include "train/data_source.h"
#include "train/loss_hook.h"
#include "train/lora_train.h"
#include "host/device.h"
#include "host/device_probe.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/model.h"
#include "train/plan.h"
#include "host/threads.h"
#include "data/fim_family.h"
#include "data/tokenizer.h"
#include "train/train_options.h"
#include "train/trainer.h"

#define FAIL(...) (sc_fail(__VA_ARGS__), -1)

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Prints the CUDA plans (full and offload) and the CPU plan; returns -1 with the table and advice when the
 * chosen CUDA placement does not fit the budget. */
static int lora_int8_base(const train_cli *o) { return strcmp(o->base_precision, "int8") == 0; }

/* LoRA: the CUDA plans (every activation kept = "full", layer recompute = "offload") and the CPU plan; the
 * placement auto takes full when it fits the budget, else offload; -1 when the chosen one does not fit. */
static int show_plan_lora(const train_cli *o, const sc_config *cfg, int use_cuda, int nthreads, int *placement_out) {
    unsigned targets;
    if (lora_parse_targets(o->lora_targets, "--lora-targets", &targets)) return -1;
    train_plan full, off, cpu;
    int int8 = lora_int8_base(o);
    plan_cuda_lora(&full, cfg, o->seq, o->micro_batch, PLAN_FULL, o->lora, targets, o->lora_dropout, int8);
    plan_cuda_lora(&off, cfg, o->seq, o->micro_batch, PLAN_OFFLOAD, o->lora, targets, o->lora_dropout, int8);
    plan_cpu_lora(&cpu, cfg, o->seq, o->micro_batch, nthreads, o->lora, targets);
    if (!o->plan && !use_cuda) return 0;
    device_probe_info dp;
    if (!use_cuda) device_probe_estimate(&dp);
    else if (device_probe(cfg->head_dim, &dp)) return -1;
    plan_set_context(&full, dp.overhead, dp.note);
    plan_set_context(&off, dp.overhead, dp.note);
    int64_t budget = o->vram_budget > 0 ? o->vram_budget : device_probe_budget(&dp);
    if (o->plan) {
        plan_print(stdout, &full, budget);
        printf("\n");
        plan_print(stdout, &off, budget);
        printf("\n");
        plan_print(stdout, &cpu, 0);
    }
    if (!use_cuda && !(o->plan && budget > 0)) return 0;
    const train_plan *chosen = strcmp(o->placement, "full") == 0 ? &full
                             : strcmp(o->placement, "offload") == 0 ? &off
                             : (budget <= 0 || full.device_bytes <= budget) ? &full : &off;
    if (placement_out) *placement_out = chosen->placement;
    if (budget > 0 && chosen->device_bytes > budget) {
        char b1[32], b2[32];
        if (!o->plan) plan_print(stderr, chosen, budget);
        return FAIL("LoRA's %s placement needs %s of device memory, over --vram-budget %s; lower --seq or the rank%s",
                    plan_placement_name(chosen->placement), plan_fmt_bytes(b1, sizeof b1, chosen->device_bytes),
                    plan_fmt_bytes(b2, sizeof b2, budget),
                    chosen == &full ? ", or --placement offload (layer recompute)" : int8 ? "" : ", or --base-precision int8");
    }
    if (o->plan && budget > 0)
        printf("\nchosen placement: %s (%s)\n", plan_placement_name(chosen->placement),
               strcmp(o->placement, "auto") ? "--placement"
                                            : "auto: full (every activation kept) when it fits, else offload (recompute)");
    return 0;
}

static int show_plan(const train_cli *o, const sc_config *cfg, int use_cuda, int nthreads, int *placement_out) {
    if (o->lora) return show_plan_lora(o, cfg, use_cuda, nthreads, placement_out);
    int fp16 = strcmp(o->precision, "fp32") != 0;
    train_plan full, off, cpu;
    plan_cuda(&full, cfg, o->seq, o->micro_batch, PLAN_FULL, fp16);
    plan_cuda(&off, cfg, o->seq, o->micro_batch, PLAN_OFFLOAD, fp16);
    plan_cpu(&cpu, cfg, o->seq, o->micro_batch, nthreads);
    int64_t budget = o->vram_budget;
    /* the context row: measured when CUDA will run (the default budget is what it leaves, less a reserve) */
    device_probe_info dp;
    if (!use_cuda) device_probe_estimate(&dp);
    else if (device_probe(cfg->head_dim, &dp)) return -1;
    char ctx[120];
    plan_set_context(&full, dp.overhead, dp.note);
    plan_set_context(&off, dp.overhead, dp.note);
    int64_t auto_budget = device_probe_budget(&dp);
    if (budget <= 0) budget = auto_budget; /* 0 = free after the context and the warm-up, less the reserve */
    if (o->plan && dp.measured)
        printf("device: %.2f GiB, CUDA context, cuBLAS, kernels %s, %.1f MiB free after them%s\n\n",
               dp.total / 1073741824.0, device_probe_describe(&dp, ctx, sizeof ctx), dp.free_now / 1048576.0,
               o->vram_budget > 0 ? "" : "; budget = free - 64 MiB reserve");
    if (o->plan) {
        plan_print(stdout, &full, budget);
        printf("\n");
        plan_print(stdout, &off, budget);
        printf("\n");
        plan_print(stdout, &cpu, 0);
    }
    if (!use_cuda && !(o->plan && budget > 0)) return 0;
    const train_plan *chosen = strcmp(o->placement, "full") == 0 ? &full
                             : strcmp(o->placement, "offload") == 0 ? &off
                             : (budget <= 0 || full.device_bytes <= budget) ? &full : &off;
    if (placement_out) *placement_out = chosen->placement;
    if (budget > 0 && chosen->device_bytes > budget) {
        char a[1024], b1[32], b2[32];
        if (!o->plan) plan_print(stderr, chosen, budget);
        return FAIL("the %s placement needs %s of device memory, over --vram-budget %s; lower: %s",
                    plan_placement_name(chosen->placement), plan_fmt_bytes(b1, sizeof b1, chosen->device_bytes),
                    plan_fmt_bytes(b2, sizeof b2, budget), plan_advice(a, sizeof a, cfg, chosen, budget));
    }
    if (o->plan && budget > 0)
        printf("\nchosen placement: %s (%s)\n", plan_placement_name(chosen->placement),
               strcmp(o->placement, "auto") ? "--placement" : "auto: full when it fits, else offload");
    return 0;
}

static int check_device(const train_cli *o, int *use_cuda) {
    *use_cuda = 0;
    /* strings here (they are saved with the run and restored on --resume), checked with the shared wording */
    static const char *const placements[] = {"auto", "full", "offload", NULL};
    static const char *const precisions[] = {"fp16", "fp32", "auto", NULL};
    if (sc_enum_index("device", device_names, o->device) < 0 ||
        sc_enum_index("placement", placements, o->placement) < 0 ||
        sc_enum_index("precision", precisions, o->precision) < 0)
        return -1;
    if (o->plan) { /* a plan on a machine with a GPU measures what the context and kernels leave */
        *use_cuda = strcmp(o->device, "cpu") && device_resolve(o->device, 1) > 0;
        return 0;
    }
    /* auto takes CUDA only for what the CUDA backend does: FP16 mixed precision */
    int auto_cuda = strcmp(o->precision, "fp32") != 0;
    *use_cuda = device_resolve(o->device, auto_cuda);
    if (*use_cuda < 0) return -1;
    if (*use_cuda && strcmp(o->precision, "fp32") == 0)
        return FAIL("--precision fp32: the CUDA backend trains in FP16 mixed precision only (FP32 master weights and "
                    "gradients); use --precision fp16 (or auto), or --device cpu for FP32");
    if (*use_cuda) return 0;
    if (strcmp(o->precision, "fp16") == 0)
        return FAIL("--precision fp16 is CUDA mixed precision and needs --device cuda; the CPU trains in fp32");
    return 0;
}

static int same_shape(const sc_config *a, const sc_config *b) {
    return a->hidden_size == b->hidden_size && a->intermediate_size == b->intermediate_size &&
           a->num_hidden_layers == b->num_hidden_layers && a->num_attention_heads == b->num_attention_heads &&
           a->num_key_value_heads == b->num_key_value_heads && a->head_dim == b->head_dim &&
           a->vocab_size == b->vocab_size && a->tie_word_embeddings == b->tie_word_embeddings;
}

typedef struct {
    train_cli o;
    train_args a;
    sc_model model;          /* the model trained, or the frozen base of a LoRA run */
    int have_model;
    sc_lora ad;              /* --lora: the adapter that trains */
    int have_lora;
    unsigned lora_targets;
    float *m, *v;
    char *state_text;
    cJSON *saved_options, *data_state, *options_json;
    train_state resumed;
    batch_source train, val;
    int have_train, have_val;
    train_backend backend;
    int placement;           /* PLAN_FULL / PLAN_OFFLOAD chosen by show_plan for CUDA */
    sc_tokenizer *tok;
    fim_options fim;
    const train_kd_provider *kdp; /* distillation, as the command layer wired it (NULL: none in this build) */
    void *kd;                /* its state for this run: --teacher-logits or --teacher */
    char ckpt[4096], run_dir[4096], data_abs[PATH_MAX], tok_path[PATH_MAX];
    char state_path[4200];   /* --resume: the checkpoint's trainer_state.json */
    int out_is_run_dir;      /* --resume: --out is the directory holding the resumed checkpoint */
    int made_out;            /* this invocation created --out */
} train_run;

/* Distillation options; the teacher's logits are for the shards' own token stream, so FIM (which rearranges
 * windows) is off: automatic FIM becomes 0, an explicit rate is refused. */
static int check_kd_options(train_cli *o) {
    if (o->teacher_logits && o->teacher) return FAIL("--teacher-logits and --teacher exclude each other");
    if (!(o->kd_alpha >= 0 && o->kd_alpha <= 1)) return FAIL("--kd-alpha must be between 0 and 1, got %g", (double)o->kd_alpha);
    if (!(o->kd_temperature > 0) || !isfinite(o->kd_temperature))
        return FAIL("--kd-temperature must be positive, got %g", (double)o->kd_temperature);
    if (strcmp(o->kd_loss, "forward") && strcmp(o->kd_loss, "reverse"))
        return FAIL("--kd-loss must be forward or reverse, got '%s'", o->kd_loss);
    if (o->fim_rate > 0)
        return FAIL("--fim-rate %g cannot be combined with distillation: the teacher's logits follow the unrearranged "
                    "token stream", (double)o->fim_rate);
    o->fim_rate = 0;
    return 0;
}

/* The shards' tokenizer: --tokenizer (or the run's), else DATA/tokenizer.json, else the model's or checkpoint's.
 * It must be the one the shards were made with; it is copied into every checkpoint and drives character-level
 * FIM. None found is fine (no FIM, no tokenizer.json in the checkpoints). */
static int open_tokenizer(train_run *r, uint64_t shard_hash) {
    train_cli *o = &r->o;
    char buf[4200];
    const char *path = NULL, *model_dir = o->resume ? r->ckpt : o->model;
    if (o->tokenizer && (train_option_given(&r->a, "tokenizer") || file_exists(o->tokenizer))) path = o->tokenizer;
    else if (file_exists(path_join(buf, sizeof buf, o->data, "tokenizer.json"))) path = buf;
    else if (model_dir && file_exists(path_join(buf, sizeof buf, model_dir, "tokenizer.json"))) path = buf;
    o->tokenizer = NULL;
    if (!path) return 0;
    if (tokenizer_load(&r->tok, path)) return -1;
    uint64_t h = tokenizer_hash(r->tok);
    if (shard_hash && h != shard_hash)
        return FAIL("%s: tokenizer %016" PRIx64 " is not the one the shards in %s were made with (%016" PRIx64 "); "
                    "give the right one with --tokenizer", path, h, o->data, shard_hash);
    if (!realpath(path, r->tok_path)) snprintf(r->tok_path, sizeof r->tok_path, "%s", path);
    o->tokenizer = r->tok_path;
    return 0;
}

/* --fim-rate: explicit needs a tokenizer with the FIM tokens; automatic (-1) is 0.5 when that is available */
static int setup_fim(train_run *r) {
    train_cli *o = &r->o;
    int automatic = o->fim_rate < 0;
    if (automatic) o->fim_rate = r->tok ? 0.5f : 0.0f;
    if (o->fim_rate > 1) return FAIL("--fim-rate must be between 0 and 1, got %g", (double)o->fim_rate);
    if (o->fim_rate == 0) return 0;
    if (!r->tok) return FAIL("--fim-rate %g needs the shards' tokenizer (--tokenizer FILE or DATA/tokenizer.json)", (double)o->fim_rate);
    if (fim_options_from_tokenizer(&r->fim, r->tok, o->fim_rate)) {
        if (!automatic) return -1;
        fprintf(stderr, "train: no fill-in-the-middle (%s)\n", sc_error());
        o->fim_rate = 0;
        memset(&r->fim, 0, sizeof r->fim);
    }
    return 0;
}

static void run_free(train_run *r) {
    backend_close(&r->backend);
    batch_source_close(&r->train);
    batch_source_close(&r->val);
    if (r->kdp) r->kdp->close(r->kd); /* after the train source it wraps */
    if (r->have_model) model_free(&r->model);
    if (r->have_lora) lora_free(&r->ad);
    tokenizer_free(r->tok);
    free(r->m), free(r->v), free(r->state_text);
    cJSON_Delete(r->saved_options);
    cJSON_Delete(r->data_state);
    cJSON_Delete(r->options_json);
}

/* --resume of a LoRA run: the base (--model, else the adapter's base_model_name_or_path) at the recorded
 * --base-precision, then the adapter and its moments, checked against that base */
static int load_resume_lora(train_run *r) {
    train_cli *o = &r->o;
    char base[4096], *state = NULL;
    if (lora_train_base_dir(r->ckpt, o, o->model != NULL, base) || lora_train_check(o, &r->lora_targets)) return -1;
    if (lora_train_load_base(&r->model, base, o)) return -1;
    r->have_model = 1;
    if (checkpoint_load_lora(r->ckpt, &r->model.cfg, o->model, &r->ad, &r->m, &r->v, &state)) return -1;
    free(state);
    r->have_lora = 1;
    return lora_train_check_resumed(&r->ad, o, &r->a, r->ckpt);
}

/* --resume: model, moments, trainer state and the recorded options */
static int load_resume(train_run *r) {
    train_cli *o = &r->o;
    if (checkpoint_resolve(o->resume, r->ckpt, sizeof r->ckpt, r->run_dir, sizeof r->run_dir)) return -1;
    /* new checkpoints go next to this one as ckpt-<step>: a directory named otherwise is not part of a run */
    int64_t named = checkpoint_name_step(r->ckpt);
    if (named < 0)
        return FAIL("%s: not named ckpt-<step>: --resume takes a run directory or one of its ckpt-<step> directories",
                    r->ckpt);
    char *sp = r->state_path;
    path_join(sp, sizeof r->state_path, r->ckpt, "trainer_state.json");
    int lora = checkpoint_is_lora(r->ckpt); /* an adapter: the base is loaded once the options are known */
    size_t len;
    if (lora ? file_read_all(sp, &r->state_text, &len) : checkpoint_load(r->ckpt, &r->model, &r->m, &r->v, &r->state_text))
        return -1;
    r->have_model = !lora;
    if (train_state_from_json(r->state_text, sp, &r->resumed, NULL, &r->data_state, &r->saved_options)) return -1;
    if (r->resumed.step != named)
        return FAIL("%s: \"step\" %lld disagrees with the directory's name ckpt-%lld", sp, (long long)r->resumed.step,
                    (long long)named);
    if (r->saved_options && train_options_restore(o, &r->a, r->saved_options, sp)) return -1;
    if (train_option_given(&r->a, "tokens") && !train_option_given(&r->a, "steps")) o->steps = 0;
    if (lora) {
        if (load_resume_lora(r)) return -1;
    } else if (o->lora) {
        return FAIL("--lora: %s is a full-training checkpoint, not a LoRA adapter; fine-tune it with --model %s --lora "
                    "%d --out NEW_RUN_DIR", r->ckpt, r->ckpt, o->lora);
    } else if (o->preset || o->model) {
        sc_config want;
        char cp[4200];
        if (o->preset) {
            if (config_preset(&want, o->preset)) return -1;
            want.vocab_size = r->model.cfg.vocab_size; /* a preset takes the data's vocabulary */
        } else if (config_load(&want, path_join(cp, sizeof cp, o->model, "config.json"))) {
            return -1;
        }
        if (!same_shape(&want, &r->model.cfg))
            return FAIL("%s: the checkpoint's model (hidden %d, %d layers, vocab %d) is not the one of --%s %s; drop "
                        "--preset/--model when resuming", r->ckpt, r->model.cfg.hidden_size,
                        r->model.cfg.num_hidden_layers, r->model.cfg.vocab_size, o->preset ? "preset" : "model",
                        o->preset ? o->preset : o->model);
    }
    if (!o->out) o->out = r->run_dir;
    return 0;
}

static int open_model(train_run *r, uint32_t data_vocab) {
    train_cli *o = &r->o;
    if (r->have_model) {
        if (data_vocab > (uint32_t)r->model.cfg.vocab_size)
            return FAIL("the shards use a vocabulary of %u ids, the model has %d", data_vocab, r->model.cfg.vocab_size);
        return 0;
    }
    if (o->model) {
        if (o->lora ? lora_train_load_base(&r->model, o->model, o) : model_load(&r->model, o->model)) return -1;
        r->have_model = 1;
        if (data_vocab > (uint32_t)r->model.cfg.vocab_size)
            return FAIL("%s: the model's vocabulary has %d ids, the shards in %s use %u", o->model,
                        r->model.cfg.vocab_size, o->data, data_vocab);
        if (o->lora) {
            if (lora_train_fresh(&r->ad, &r->model, o->model, o, r->lora_targets)) return -1;
            r->have_lora = 1;
        }
        return 0;
    }
    sc_config cfg;
    if (config_preset(&cfg, o->preset)) return -1;
    if (data_vocab) cfg.vocab_size = (int)data_vocab; /* the preset's shape with the tokenizer's vocabulary */
    if (config_validate(&cfg, "--preset")) return -1;
    model_create(&r->model, &cfg);
    model_init_weights(&r->model, (uint64_t)o->seed, 0.02f);
    r->have_model = 1;
    return 0;
}

static int setup(train_run *r, int *use_cuda, int *nthreads) {
    train_cli *o = &r->o;
    if (check_device(o, use_cuda)) return -1;
    if (o->resume) {
        if (load_resume(r)) return -1;
    } else if (!!o->preset == !!o->model) {
        return FAIL("give exactly one of --preset P (fresh weights) or --model DIR (or --resume RUN_DIR)");
    }
    if (o->lora && !o->resume && lora_train_check(o, &r->lora_targets)) return -1;
    /* the device holds the base in FP16 (or INT8): a fresh run says so, and a CPU resume of it rounds the same way */
    if (o->lora && *use_cuda && !o->resume && !strcmp(o->base_precision, "auto")) o->base_precision = "fp16";
    if (o->lora && *use_cuda && !strcmp(o->base_precision, "fp32")) { /* the device holds FP16 or INT8 */
        if (!strcmp(o->device, "cuda"))
            return FAIL("--base-precision fp32: the CUDA LoRA base is FP16 or INT8 (--base-precision fp16 or int8), "
                        "or train on the CPU with --device cpu");
        *use_cuda = 0; /* auto: the CPU */
    }
    *nthreads = sc_set_threads(o->threads);
    if (o->plan && !o->data) { /* a plan needs only the model's shape */
        sc_config cfg;
        char cp[4200];
        if (r->have_model) cfg = r->model.cfg;
        else if (o->model ? config_load(&cfg, path_join(cp, sizeof cp, o->model, "config.json"))
                          : config_preset(&cfg, o->preset))
            return -1;
        if (train_options_resolve(o, &r->a, &cfg, 0)) return -1;
        return show_plan(o, &cfg, *use_cuda, *nthreads, NULL) ? -1 : 1;
    }
    if (!o->data && o->resume) return FAIL("%s: \"options.data\" is missing: give --data SHARD_DIR", r->state_path);
    if (!o->data) return FAIL("--data SHARD_DIR is required");
    if (!o->out && !o->plan) return FAIL("--out RUN_DIR is required");
    /* open the train split once with a provisional length to learn its size and vocabulary */
    batch_source probe;
    if (data_source_open(&probe, o->data, "train", 1, 0, 0, 0, NULL)) return -1;
    uint64_t ntok = data_source_tokens(&probe);
    uint32_t vocab = probe.vocab_size;
    uint64_t hash = data_source_tokenizer_hash(&probe);
    batch_source_close(&probe);
    if (open_model(r, vocab)) return -1;
    if ((o->teacher_logits || o->teacher) && !r->kdp)
        return FAIL("--%s: this build has no distillation (distill/)", o->teacher ? "teacher" : "teacher-logits");
    if ((o->teacher_logits || o->teacher) && check_kd_options(o)) return -1;
    if (!o->plan && (open_tokenizer(r, hash) || setup_fim(r))) return -1;
    if (train_options_resolve(o, &r->a, &r->model.cfg, ntok)) return -1;
    if (o->resume && o->steps < r->resumed.step) {
        char w[4300];
        const char *name = train_option_given(&r->a, "tokens") && !train_option_given(&r->a, "steps") ? "tokens" : "steps";
        return FAIL("%s gives %lld steps, below step %lld of %s", train_option_where(&r->a, name, w, sizeof w),
                    (long long)o->steps, (long long)r->resumed.step, r->ckpt);
    }
    if (show_plan(o, &r->model.cfg, *use_cuda, *nthreads, &r->placement)) return -1;
    if (o->plan) return 1;
    if (data_source_open(&r->train, o->data, "train", o->seq, 1, (uint64_t)o->seed, hash, &r->fim)) return -1;
    r->have_train = 1;
    if (r->data_state && r->train.state_from_json(r->train.ctx, r->data_state)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", sc_error());
        return FAIL("%s: %s", r->state_path, msg);
    }
    train_kd_options ko = {o->kd_alpha, o->kd_temperature, strcmp(o->kd_loss, "reverse") == 0, o->kd_top_k};
    if (o->teacher_logits &&
        r->kdp->open_logits(&r->kd, &r->train, o->data, o->teacher_logits, r->model.cfg.vocab_size, &ko))
        return -1;
    if (o->teacher && r->kdp->open_teacher(&r->kd, o->teacher, r->model.cfg.vocab_size, hash, o->seq, &ko)) return -1;
    if (data_source_has_split(o->data, "val")) {
        if (data_source_open(&r->val, o->data, "val", o->seq, 0, 0, hash, NULL)) return -1;
        r->have_val = 1;
    }
    if (realpath(o->data, r->data_abs)) o->data = r->data_abs;
    return 0;
}

/* The arena the CUDA backend allocated against --vram-budget (checked again: the plan's cuBLAS workspace is an
 * estimate); what: how the message names the arena (" placement's" for full training). */
static int check_arena(const train_run *r, const char *what, int64_t need) {
    char b1[32], b2[32];
    if (r->o.vram_budget > 0 && need > r->o.vram_budget)
        return FAIL("the %s%s device arena is %s, over --vram-budget %s", r->backend.name, what,
                    plan_fmt_bytes(b1, sizeof b1, need), plan_fmt_bytes(b2, sizeof b2, r->o.vram_budget));
    return 0;
}

/* The device backend: CUDA in the placement show_plan chose, else the CPU. The plan is cuda_model's own layout,
 * but with a 32 MiB cuBLAS workspace (4 MiB before Hopper) and a margin, so --vram-budget is checked again against
 * the arena actually allocated. */
static int open_backend(train_run *r, int use_cuda) {
    if (use_cuda && r->have_lora) {
        if (backend_lora_cuda_open(&r->backend, &r->model, &r->ad, r->o.seq, lora_int8_base(&r->o),
                                   r->placement == PLAN_OFFLOAD, r->kd ? r->kdp->top_k(r->kd) : 0, (uint64_t)r->o.seed))
            return -1;
        if (r->kd) {
            train_kd hook = r->kdp->hook(r->kd);
            backend_lora_cuda_set_kd(&r->backend, &hook);
        }
        return check_arena(r, "", (int64_t)backend_lora_cuda_device_bytes(&r->backend));
    }
    if (use_cuda) {
        if (backend_cuda_open(&r->backend, &r->model, r->o.seq, r->placement, r->kd ? r->kdp->top_k(r->kd) : 0))
            return -1;
        if (r->kd) {
            train_kd hook = r->kdp->hook(r->kd);
            backend_cuda_set_kd(&r->backend, &hook);
        }
        return check_arena(r, " placement's", (int64_t)backend_cuda_device_bytes(&r->backend));
    }
    if (r->have_lora) backend_lora_open(&r->backend, &r->model, &r->ad, r->o.seq, 1, (uint64_t)r->o.seed);
    else backend_cpu_open(&r->backend, &r->model, r->o.seq, 1);
    if (r->kd) {
        train_kd hook = r->kdp->hook(r->kd);
        if (r->have_lora) backend_lora_set_kd(&r->backend, &hook);
        else backend_cpu_set_kd(&r->backend, &hook);
    }
    return 0;
}

/* The run directory: created, leftovers of killed saves removed. A fresh run needs one without checkpoints; a
 * resumed one continues in its own directory only from the newest checkpoint there, because going on from an
 * older one would rewrite the newer ckpt-<step> names with other weights (refused: the user removes them or
 * branches off with --out), and never into another run's directory. */
static int prepare_out_dir(train_run *r) {
    const char *out = r->o.out;
    if (mkdir(out, 0755) == 0) r->made_out = 1;
    else if (errno != EEXIST) return FAIL("%s: cannot create (%s)", out, strerror(errno));
    checkpoint_clean_temp(out);
    int64_t *steps;
    int n;
    if (checkpoint_list(out, &steps, &n)) return -1;
    int64_t last = n ? steps[n - 1] : 0;
    free(steps);
    if (r->o.resume) {
        char a[PATH_MAX], b[PATH_MAX];
        r->out_is_run_dir = realpath(out, a) && realpath(r->run_dir, b) && strcmp(a, b) == 0;
        if (r->out_is_run_dir && last > r->resumed.step)
            return FAIL("%s is older than %s/ckpt-%lld: continuing from it would replace the newer checkpoints, so it "
                        "is refused; delete them first or branch off with --out NEW_RUN_DIR", r->ckpt, out, (long long)last);
        if (r->out_is_run_dir || !n) return 0;
    }
    if (n) return FAIL("%s already holds checkpoints (ckpt-%lld): continue it with --resume %s, or choose another --out",
                       out, (long long)last, out);
    return 0;
}

/* A run that fails before its first checkpoint in --out (a fresh run, or a resumed one branching off into a new
 * directory) leaves nothing there: no metrics.jsonl or loss.svg without a checkpoint, and no --out it created. */
static void remove_unsaved_run(train_run *r) {
    const char *out = r->o.out;
    int64_t *steps;
    int n;
    if (!out || (r->o.resume && r->out_is_run_dir) || checkpoint_list(out, &steps, &n)) return;
    free(steps);
    if (n) return;
    char p[4200];
    unlink(path_join(p, sizeof p, out, "metrics.jsonl"));
    unlink(path_join(p, sizeof p, out, "loss.svg"));
    checkpoint_clean_temp(out);
    if (r->made_out) rmdir(out);
}

int cmd_train(int argc, char **argv, const train_kd_provider *kd) {
    train_run r;
    memset(&r, 0, sizeof r);
    r.kdp = kd;
    train_options_init(&r.o, &r.a);
    int prc = train_options_parse(&r.o, &r.a, argc, argv);
    if (prc) return prc == 1 ? 0 : 2;
    train_cli *o = &r.o;
    int use_cuda = 0, nthreads = 1, rc = setup(&r, &use_cuda, &nthreads);
    if (rc) { /* rc 1: --plan printed */
        if (rc < 0) fprintf(stderr, "smallcoder train: %s\n", sc_error());
        run_free(&r);
        return rc > 0 ? 0 : 1;
    }
    if (prepare_out_dir(&r)) goto fail;

    if (open_backend(&r, use_cuda)) goto fail;
    if (r.m && r.backend.write_state(&r.backend, r.m, r.v)) goto fail;
    r.options_json = train_options_to_json(o, &r.a);
    train_config c = {
        .seq = o->seq, .micro_batch = o->micro_batch, .grad_accum = o->grad_accum,
        .sched = {o->lr, o->min_lr, o->warmup, o->steps},
        .weight_decay = o->weight_decay, .clip = o->clip, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
        .dynamic_loss_scale = r.backend.fp16,
        .eval_every = o->eval_every, .save_every = o->save_every, .keep = o->keep, .eval_tokens = o->eval_tokens,
        .stop_at = o->stop_at, .max_skips = o->max_skips, .run_dir = o->out,
        .have_saved_step = o->resume && r.out_is_run_dir, .saved_step = r.resumed.step,
        .tokenizer = o->tokenizer,
        .options = r.options_json, .show_progress = !o->quiet,
    };
    trainer t;
    if (trainer_open(&t, &r.backend, &r.train, r.have_val ? &r.val : NULL, &c, o->resume ? &r.resumed : NULL))
        goto fail;
    int64_t per_step = (int64_t)o->seq * o->micro_batch * o->grad_accum;
    train_plan cp;
    if (r.have_lora) plan_cpu_lora(&cp, &r.model.cfg, o->seq, o->micro_batch, nthreads, r.ad.rank, r.ad.targets);
    else plan_cpu(&cp, &r.model.cfg, o->seq, o->micro_batch, nthreads);
    char mem[32], dev[400];
    if (use_cuda) {
        char d[320];
        if (r.have_lora) backend_lora_cuda_describe(&r.backend, d, sizeof d);
        else backend_cuda_describe(&r.backend, d, sizeof d);
        snprintf(dev, sizeof dev, "%s fp16 on %s", r.backend.name, d);
    } else {
        snprintf(dev, sizeof dev, "cpu fp32, %d threads, ~%s", nthreads, plan_fmt_bytes(mem, sizeof mem, cp.host_bytes));
    }
    char what[200];
    if (r.have_lora) {
        char tl[128];
        snprintf(what, sizeof what, "LoRA r %d alpha %g on %s (%lld adapter parameters, base of %lld frozen at %s)",
                 r.ad.rank, (double)r.ad.alpha, lora_targets_string(r.ad.targets, tl, sizeof tl),
                 (long long)r.ad.nparams, (long long)r.model.nparams,
                 strcmp(o->base_precision, "auto") ? o->base_precision : use_cuda ? "fp16" : "fp32");
    } else {
        snprintf(what, sizeof what, "%lld parameters", (long long)r.model.nparams);
    }
    fprintf(stderr,
            "train: %s, %s, %s; seq %d x micro-batch %d x grad-accum %d = %lld "
            "tokens/step; %s step %lld of %lld; lr %g -> %g, warmup %d; FIM %g%s\n",
            o->resume ? r.ckpt : o->preset ? o->preset : o->model, what, dev, o->seq, o->micro_batch, o->grad_accum,
            (long long)per_step, o->resume ? "resuming at" : "from", (long long)t.st.step, (long long)o->steps,
            (double)o->lr, (double)o->min_lr, o->warmup, (double)o->fim_rate, r.have_val ? "" : "; no val-*.tok shards: no evaluation");
    if (o->fim_rate > 0 && r.tok) { /* which family's layout, so a run on an open model's shards shows its tokens */
        const fim_family *ff = fim_family_of(r.tok);
        fprintf(stderr, "train: FIM in the %s layout (%s %s %s, pad %s), documents end with %s%s%s\n", ff ? ff->name : "?",
                ff ? ff->pre : "", ff ? ff->suf : "", ff ? ff->mid : "", ff && ff->pad ? ff->pad : "none",
                tokenizer_token_text(r.tok, r.fim.ids.eot), r.fim.bos >= 0 ? " and keep their BOS " : "",
                r.fim.bos >= 0 ? tokenizer_token_text(r.tok, r.fim.bos) : "");
    }
    if (t.st.step >= o->steps) fprintf(stderr, "train: the run is already at step %lld of %lld\n", (long long)t.st.step, (long long)o->steps);
    if (r.kd)
        fprintf(stderr, "train: distilling from %s: loss = %g * %g^2 * KL(%s) + %g * CE\n", r.kdp->describe(r.kd),
                (double)o->kd_alpha, (double)o->kd_temperature,
                strcmp(o->kd_loss, "reverse") ? "teacher||student" : "student||teacher", 1.0 - o->kd_alpha);
    trainer_install_signals();
    rc = trainer_run(&t);
    if (rc == 2) {
        char why[4400];
        fprintf(stderr, "smallcoder train: %s\n", trainer_skip_reason(&t, why, sizeof why));
        trainer_close(&t);
        run_free(&r);
        return 1;
    }
    if (rc >= 0)
        fprintf(stderr, "train: %s after step %lld; %s\n", rc == 1 ? "stopped by signal" : "done",
                (long long)t.st.step, t.last_ckpt[0] ? t.last_ckpt : "no checkpoint written");
    if (rc == 1 && t.last_ckpt[0]) fprintf(stderr, "train: continue with: smallcoder train --resume %s\n", o->out);
    trainer_close(&t);
    if (rc < 0) goto fail;
    run_free(&r);
    return 0;
fail:
    fprintf(stderr, "smallcoder train: %s\n", sc_error());
    remove_unsaved_run(&r);
    run_free(&r);
    return 1;
}
