/* spec_cli.c — see spec_cli.h. */
#include "infer/spec_cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/error.h"
#include "host/fileio.h"

/* an out-of-range value counts as wanted too, so spec_cli_open refuses it instead of it being ignored */
static int spec_cli_bad(const sc_spec_cli *c) {
    return c->draft_max < 1 || c->draft_max > 63 || c->lookup < 0 || c->lookup > 16 || c->fixed_k < 0 ||
           c->fixed_k > c->draft_max || !(c->draft_min_p >= 0 && c->draft_min_p < 1) || c->draft_threads < 0 ||
           c->draft_threads > 1024;
}

int spec_cli_wanted(const sc_spec_cli *c) { return c->draft_dir != NULL || c->lookup > 0 || spec_cli_bad(c); }

/* the tokenizer hash of dir/tokenizer.json: 1 found, 0 no file, -1 unreadable */
static int dir_tok_hash(const char *dir, uint64_t *h) {
    char path[4096];
    path_join(path, sizeof path, dir, "tokenizer.json");
    if (access(path, F_OK)) return 0;
    sc_tokenizer *t;
    if (tokenizer_load(&t, path)) return -1;
    *h = tokenizer_hash(t);
    tokenizer_free(t);
    return 1;
}

int spec_cli_open(sc_spec_cli *c, const char *target_dir, const sc_tokenizer *tok, const sc_weights *target,
                  const sc_engine_opts *eo, sc_spec_opts *o) {
    memset(o, 0, sizeof *o);
    if (c->draft_max < 1 || c->draft_max > 63) return sc_fail("--draft-max must be 1..63, got %d", c->draft_max);
    if (c->lookup < 0 || c->lookup > 16) return sc_fail("--lookup must be 0..16, got %d", c->lookup);
    if (!(c->draft_min_p >= 0 && c->draft_min_p < 1))
        return sc_fail("--draft-min-p must be in [0, 1), got %g", (double)c->draft_min_p);
    if (c->draft_threads < 0 || c->draft_threads > 1024)
        return sc_fail("--draft-threads must be 0..1024 (0 = --threads), got %d", c->draft_threads);
    if (c->fixed_k < 0 || c->fixed_k > c->draft_max)
        return sc_fail("--draft-fixed must be 0..%d (--draft-max), got %d", c->draft_max, c->fixed_k);
    o->draft_max = c->draft_max, o->draft_min_p = c->draft_min_p, o->lookup = c->lookup, o->fixed_k = c->fixed_k;
    if (!c->draft_dir) return 0;
    uint64_t ht = 0, hd = 0;
    int has_d = dir_tok_hash(c->draft_dir, &hd);
    if (has_d < 0) return -1;
    int has_t = tok ? (ht = tokenizer_hash(tok), 1) : dir_tok_hash(target_dir, &ht);
    if (has_t < 0) return -1;
    if (tok && !has_d)
        return sc_fail("--draft %s: no tokenizer.json there; a draft must use the model's tokenizer", c->draft_dir);
    if (has_t && has_d && ht != hd)
        return sc_fail("--draft %s: its tokenizer (hash %016llx) is not the model's (hash %016llx); a draft must "
                       "use the same tokenizer", c->draft_dir, (unsigned long long)hd, (unsigned long long)ht);
    if (weights_load(&c->w, c->draft_dir)) return -1;
    if (c->w.cfg.vocab_size != target->cfg.vocab_size) {
        sc_fail("--draft %s: vocabulary of %d tokens, the model has %d; a draft must use the same tokenizer",
                c->draft_dir, c->w.cfg.vocab_size, target->cfg.vocab_size);
        weights_free(&c->w);
        return -1;
    }
    sc_engine_opts d = *eo;
    d.n_seqs = eo->n_seqs > 0 ? eo->n_seqs : 1;
    /* CPU engine: a 4 MB draft's forward takes ~0.1 ms on one core, about what waking a second thread for each
     * of its parallel regions costs: with 2 threads for the draft, fixed K = 2 was 1.16-1.30x the target alone,
     * with 1 thread 1.34-1.45x (infer-bench -t 2, 7-layer 104 MiB target, load 7.5-8.3 on 2 cores) */
    if (c->draft_threads > 0) d.threads = c->draft_threads;
    d.reserve_bytes = 0; /* the draft opens last: nothing is reserved after it */
    d.lora = NULL, d.n_lora = 0; /* the target's adapters are not the draft's: it drafts as it is */
    if (engine_open(&c->e, &c->w, &d)) {
        weights_free(&c->w);
        return -1;
    }
    c->loaded = 1;
    o->draft = &c->e;
    return 0;
}

void spec_cli_close(sc_spec_cli *c) {
    if (!c->loaded) return;
    engine_close(&c->e);
    weights_free(&c->w);
    c->loaded = 0;
}
