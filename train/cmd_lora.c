/* cmd_lora.c — `smallcoder lora merge|init`: fold a PEFT LoRA adapter into its base and write a plain HF model
 * directory (same dtype as the base), or write a fresh adapter (PEFT's init: B = 0) for a base. Both outputs are
 * written into a temporary directory and renamed into place, so a failure leaves nothing behind. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/args.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/half.h"
#include "host/lora.h"
#include "host/model.h"
#include "host/safetensors_set.h"
#include "train/checkpoint.h"
#include "train/commands_train.h"

/* The files besides the weights that make a model directory usable (tokenizer, generation defaults). */
static const char *const carried[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                      "generation_config.json", NULL};

static int copy_if_present(const char *from_dir, const char *to_dir, const char *name) {
    char a[4200], b[4200], *data;
    size_t len;
    struct stat sb;
    if (stat(path_join(a, sizeof a, from_dir, name), &sb) != 0) return 0;
    if (file_read_all(a, &data, &len)) return -1;
    int rc = atomic_write_file(path_join(b, sizeof b, to_dir, name), data, len);
    free(data);
    return rc;
}

/* The storage type of the base's matrices (the first 2-D tensor's): the merged model is written in it. */
static int base_dtype(const char *dir, st_dtype *out) {
    st_set s;
    if (st_set_open(&s, dir)) return -1;
    *out = ST_F32;
    for (int i = 0; i < s.ntensors; i++) {
        const st_tensor *t = st_set_tensor(&s, i);
        if (t->ndim == 2) {
            *out = t->dtype;
            break;
        }
    }
    st_set_close(&s);
    return 0;
}

/* Writes m into dir (created; must not exist) as dtype, with the base's tokenizer and generation files, through a
 * temporary directory next to it. */
static int write_model_dir(const sc_model *m, st_dtype dtype, const char *base_dir, const char *dir) {
    char tmp[4200], p[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", dir, (int)getpid());
    checkpoint_remove_tree(tmp);
    if (mkdir(tmp, 0755) != 0) return sc_fail("%s: cannot create (%s)", tmp, strerror(errno));
    int n = m->ntensors, rc = 0;
    st_entry *e = sc_calloc((size_t)n, sizeof(st_entry));
    uint16_t **conv = sc_calloc((size_t)n, sizeof(uint16_t *));
    for (int i = 0; i < n; i++) {
        const sc_param *q = &m->table[i];
        const float *w = m->params + q->offset;
        e[i] = (st_entry){.name = q->name, .dtype = ST_F32, .ndim = q->ndim, .data = w};
        e[i].shape[0] = q->shape[0];
        e[i].shape[1] = q->shape[1];
        if (dtype == ST_F16 || dtype == ST_BF16) {
            conv[i] = sc_malloc(sizeof(uint16_t) * (size_t)(q->numel ? q->numel : 1));
            for (int64_t k = 0; k < q->numel; k++)
                conv[i][k] = dtype == ST_F16 ? float_to_half(w[k]) : float_to_bf16(w[k]);
            e[i].dtype = dtype;
            e[i].data = conv[i];
        }
    }
    static const char *const metadata[] = {"format", "pt", NULL};
    rc = st_write(path_join(p, sizeof p, tmp, "model.safetensors"), e, n, metadata);
    for (int i = 0; i < n; i++) free(conv[i]);
    free(conv), free(e);
    if (!rc) rc = config_save(&m->cfg, path_join(p, sizeof p, tmp, "config.json"));
    for (int i = 0; carried[i] && !rc; i++) rc = copy_if_present(base_dir, tmp, carried[i]);
    if (!rc) rc = fsync_dir(tmp);
    if (!rc && rename(tmp, dir) != 0) rc = sc_fail("%s: cannot rename from %s (%s)", dir, tmp, strerror(errno));
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", sc_error());
        checkpoint_remove_tree(tmp);
        return sc_fail("%s", msg);
    }
    return 0;
}

static int out_is_free(const char *out) {
    struct stat sb;
    if (stat(out, &sb) == 0) return sc_fail("%s already exists: choose a new --out directory", out);
    return 0;
}

static int lora_merge(int argc, char **argv) {
    const char *base = NULL, *adapter = NULL, *out = NULL;
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &base, "the base model directory the adapter was trained on", 1},
        {"adapter", 'a', SC_ARG_STR, &adapter, "PEFT adapter directory (adapter_config.json + adapter_model.safetensors, e.g. a LoRA run's ckpt-N)", 1},
        {"out", 'o', SC_ARG_STR, &out, "new model directory to write (must not exist)", 1},
    };
    sc_cli cli = {"smallcoder lora merge", "--model BASE --adapter DIR --out NEW_DIR",
                  "Folds the adapter into the base, W += (lora_alpha / r) B A for every adapted layer, and writes a plain\n"
                  "HF model directory in the base's storage type (F32, F16 or BF16) with its tokenizer files.",
                  args, sizeof args / sizeof args[0], 0, 0};
    int npos, rc = sc_args_parse(&cli, argc, argv, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    sc_model m;
    sc_lora ad;
    st_dtype dt;
    if (out_is_free(out) || base_dtype(base, &dt) || model_load(&m, base)) goto fail;
    if (lora_load(&ad, adapter, &m.cfg, base)) {
        model_free(&m);
        goto fail;
    }
    rc = lora_merge_into(&ad, &m);
    if (!rc) rc = write_model_dir(&m, dt, base, out);
    if (!rc)
        fprintf(stderr, "lora merge: %s + %s (r %d, alpha %g, %d tensors) -> %s (%s)\n", base, adapter, ad.rank,
                (double)ad.alpha, ad.ntensors, out, st_dtype_name(dt));
    lora_free(&ad);
    model_free(&m);
    if (rc) goto fail;
    return 0;
fail:
    fprintf(stderr, "smallcoder lora merge: %s\n", sc_error());
    return 1;
}

static int lora_init(int argc, char **argv) {
    const char *base = NULL, *out = NULL, *targets = "all";
    int rank = 8, seed = 0;
    float alpha = 0;
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &base, "the base model directory", 1},
        {"rank", 'r', SC_ARG_INT, &rank, "LoRA rank r", 0},
        {"alpha", 0, SC_ARG_FLOAT, &alpha, "lora_alpha (0 = 2 x rank)", 0},
        {"targets", 0, SC_ARG_STR, &targets, "adapted layers: q,k,v,o,gate,up,down or all", 0},
        {"seed", 0, SC_ARG_INT, &seed, "seed of A's initialisation", 0},
        {"out", 'o', SC_ARG_STR, &out, "new adapter directory to write (must not exist)", 1},
    };
    sc_cli cli = {"smallcoder lora init", "--model BASE --out NEW_DIR [options]",
                  "Writes a fresh PEFT adapter for the base, initialised as PEFT does (A kaiming-uniform, B = 0): the\n"
                  "adapted model computes exactly what the base does until it is trained.",
                  args, sizeof args / sizeof args[0], 0, 0};
    static const sc_arg_range ranges[] = {{"rank", 1, 65536}, {"alpha", 0, 1e6}};
    int npos, rc = sc_args_parse(&cli, argc, argv, &npos);
    if (!rc) rc = sc_args_check_ranges(&cli, ranges, 2);
    if (rc) return rc == 1 ? 0 : 2;
    unsigned mask;
    sc_config cfg;
    sc_lora ad;
    char tmp[4200];
    if (lora_parse_targets(targets, "--targets", &mask) || out_is_free(out) || model_config_load(&cfg, base, NULL) ||
        lora_create(&ad, &cfg, rank, alpha > 0 ? alpha : 2.0f * (float)rank, mask, 0.0f, base))
        goto fail;
    lora_init_weights(&ad, (uint64_t)seed);
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", out, (int)getpid());
    checkpoint_remove_tree(tmp);
    rc = mkdir(tmp, 0755) != 0 ? sc_fail("%s: cannot create (%s)", tmp, strerror(errno)) : 0;
    if (!rc) rc = lora_save(&ad, tmp);
    if (!rc) rc = fsync_dir(tmp);
    if (!rc && rename(tmp, out) != 0) rc = sc_fail("%s: cannot rename from %s (%s)", out, tmp, strerror(errno));
    if (rc) checkpoint_remove_tree(tmp);
    lora_free(&ad);
    if (rc) goto fail;
    return 0;
fail:
    fprintf(stderr, "smallcoder lora init: %s\n", sc_error());
    return 1;
}

int cmd_lora(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "merge")) return lora_merge(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "init")) return lora_init(argc - 1, argv + 1);
    FILE *f = argc >= 2 && strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? stderr : stdout;
    fprintf(f, "usage: smallcoder lora merge --model BASE --adapter DIR --out NEW_DIR\n"
               "       smallcoder lora init --model BASE --out NEW_DIR [--rank R] [--alpha A] [--targets LIST]\n"
               "LoRA adapters in PEFT's layout; train them with `smallcoder train --model BASE --lora RANK`.\n");
    return f == stdout ? 0 : 2;
}
