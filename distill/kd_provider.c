/* kd_provider.c — kd_train.h behind train/'s loss-hook table (train/loss_hook.h). */
#include "distill/kd_provider.h"

#include "distill/kd_train.h"

static int provider_open_logits(void **out, batch_source *train, const char *data_dir, const char *kd_dir,
                                int student_vocab, const train_kd_options *o) {
    kd_train *k = NULL;
    int rc = kd_train_open_logits(&k, train, data_dir, kd_dir, student_vocab, o);
    *out = k;
    return rc;
}

static int provider_open_teacher(void **out, const char *teacher_dir, int student_vocab, uint64_t tok_hash, int seq,
                                 const train_kd_options *o) {
    kd_train *k = NULL;
    int rc = kd_train_open_teacher(&k, teacher_dir, student_vocab, tok_hash, seq, o);
    *out = k;
    return rc;
}

static train_kd provider_hook(void *k) { return kd_train_hook(k); }
static const char *provider_describe(const void *k) { return kd_train_describe(k); }
static int provider_top_k(const void *k) { return kd_train_top_k(k); }
static void provider_close(void *k) { kd_train_close(k); }

const train_kd_provider kd_train_provider = {
    provider_open_logits, provider_open_teacher, provider_hook, provider_describe, provider_top_k, provider_close,
};
