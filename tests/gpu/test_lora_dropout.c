/* test_lora_dropout.c — kernels/lora_dropout.cu against its CPU twin (host/cpu/lora_dropout.c) on the same FP16
 * inputs: the forward drop(x) and the backward dx += mask * g give the twin's values rounded to FP16, bit for bit
 * (one multiply and one add in FP32, then one rounding, on both sides); the same elements are dropped, about p of
 * them; another key or slot draws another mask; p = 0 keeps x. */
#include "host/cpu/lora_dropout.h"
#include "tests/gpu/gpu_test.h"

static void run_case(sc_rng *r, int64_t n, uint64_t key, int slot, float p) {
    char what[200];
    float *x = gt_randn_half(r, n, 1.0), *acc = gt_randn_half(r, n, 1.0);
    float *ref = TU_NEW(float, n), *refb = TU_NEW(float, n), *got = TU_NEW(float, n);
    lora_dropout(ref, x, NULL, n, key, slot, p);
    gt_round_half(ref, n);
    lora_dropout(refb, x, acc, n, key, slot, p);
    gt_round_half(refb, n);
    kn_half *d_x = gt_up_half(x, n), *d_out = gt_alloc(sizeof(kn_half) * (size_t)n), *d_acc = gt_up_half(acc, n);
    kn_lora_dropout(d_out, d_x, NULL, n, key, slot, p, 0);
    gt_down_half(got, d_out, n);
    int64_t dropped = 0, mismatched = 0;
    for (int64_t i = 0; i < n; i++) {
        dropped += got[i] == 0.0f && x[i] != 0.0f;
        mismatched += (got[i] == 0.0f) != (ref[i] == 0.0f);
    }
    snprintf(what, sizeof what, "dropout n %lld p %.2f slot %d: forward = twin (bits)", (long long)n, (double)p, slot);
    tu_check(what, gt_bitdiff(got, ref, sizeof(float) * (size_t)n), 0.0);
    snprintf(what, sizeof what, "dropout p %.2f: the same elements dropped (%lld of %lld dropped)", (double)p,
             (long long)dropped, (long long)n);
    tu_check(what, (double)mismatched, 0.0);
    snprintf(what, sizeof what, "dropout p %.2f: the share dropped is p (within 5 sigma)", (double)p);
    double sigma = sqrt((double)n * p * (1 - p)) + 1;
    tu_check(what, fabs((double)dropped - (double)n * p) / sigma, 5.0);
    kn_lora_dropout(d_acc, d_x, d_acc, n, key, slot, p, 0); /* in place: dx += mask * g */
    gt_down_half(got, d_acc, n);
    snprintf(what, sizeof what, "dropout p %.2f: backward accumulate in place = twin (bits)", (double)p);
    tu_check(what, gt_bitdiff(got, refb, sizeof(float) * (size_t)n), 0.0);
    /* another slot or key: another mask */
    float *other = TU_NEW(float, n);
    lora_dropout(other, x, NULL, n, key, slot + 1, p);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; i++) differ += (other[i] == 0.0f) != (ref[i] == 0.0f);
    snprintf(what, sizeof what, "dropout p %.2f: slot %d and %d draw different masks", (double)p, slot, slot + 1);
    tu_check(what, p > 0 && differ == 0 ? 1.0 : 0.0, 0.0);
    GT_FREE(d_x), GT_FREE(d_out), GT_FREE(d_acc);
    free(x), free(acc), free(ref), free(refb), free(got), free(other);
}

int main(void) {
    gt_require_device("test_lora_dropout");
    sc_rng r;
    rng_seed(&r, 3);
    run_case(&r, 1000, 0x1234567890abcdefull, 3, 0.1f);
    run_case(&r, 4099, 42, 7 * 2 + 6, 0.5f);
    run_case(&r, 333, 7, 0, 0.0f);
    if (!gt_quick()) run_case(&r, 1 << 20, 99, 100, 0.05f);
    return tu_finish("test_lora_dropout");
}
