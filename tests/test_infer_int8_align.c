/* test_infer_int8_align.c — an INT8 model directory whose safetensors data section starts at an odd offset (legal:
 * the JSON header may end in any number of spaces) loads with the same scales and weights as the aligned one.
 * Issue 14, item 5: qmat_prepare read the FP16 scales through a uint16_t pointer, a misaligned load that UBSan
 * (the CI's sanitizer pass, -fno-sanitize-recover) stops at; on x86 without UBSan it happened to work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/error.h"
#include "host/fileio.h"
#include "host/model.h"
#include "infer/quantize.h"
#include "host/weights.h"
#include "tests/check.h"
#include "tests/model_dir.h"

/* Copies dir/model.safetensors to odd/model.safetensors with one more space at the end of the header. */
static int copy_misaligned(const char *dir, const char *odd) {
    char src[4200], dst[4200];
    char *buf;
    size_t n;
    if (file_read_all(path_join(src, sizeof src, dir, "model.safetensors"), &buf, &n)) return -1;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (uint8_t)buf[i];
    uint64_t h2 = hlen + 1;
    FILE *f = fopen(path_join(dst, sizeof dst, odd, "model.safetensors"), "wb");
    for (int i = 0; i < 8; i++) fputc((int)(h2 >> (8 * i) & 0xff), f);
    fwrite(buf + 8, 1, hlen, f);
    fputc(' ', f);
    fwrite(buf + 8 + hlen, 1, n - 8 - hlen, f);
    fclose(f);
    free(buf);
    char *cfg;
    if (file_read_all(path_join(src, sizeof src, dir, "config.json"), &cfg, &n)) return -1;
    int rc = atomic_write_file(path_join(dst, sizeof dst, odd, "config.json"), cfg, n);
    free(cfg);
    return rc;
}

static void same_matrix(const sc_wmat *a, const sc_wmat *b, const char *what) {
    size_t ns = (size_t)a->q.rows * a->q.ngroups;
    CHECKF(memcmp(a->q.fscale, b->q.fscale, ns * sizeof(float)) == 0, "%s: scales differ", what);
    float *ra = malloc((size_t)a->cols * 4), *rb = malloc((size_t)a->cols * 4);
    wmat_rows_f32(a, a->rows - 1, a->rows, ra);
    wmat_rows_f32(b, b->rows - 1, b->rows, rb);
    CHECKF(memcmp(ra, rb, (size_t)a->cols * 4) == 0, "%s: last row differs", what);
    free(ra), free(rb);
}

int main(void) {
    char base[] = "/tmp/sc_test_int8_align.XXXXXX";
    md_mkdtemp(base);
    sc_config cfg;
    config_preset(&cfg, "tiny");
    cfg.num_hidden_layers = 1;
    cfg.vocab_size = 64;
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 7, 0.05f);
    int groups[] = {0, 32};
    for (int gi = 0; gi < 2; gi++) {
        char dir[4200], odd[4200];
        snprintf(dir, sizeof dir, "%s/int8-%d", base, groups[gi]);
        snprintf(odd, sizeof odd, "%s/odd-%d", base, groups[gi]);
        CHECKF(quantize_model(&m, dir, groups[gi]) == 0, "quantize: %s", sc_error());
        CHECK(mkdir(odd, 0755) == 0);
        CHECKF(copy_misaligned(dir, odd) == 0, "copy: %s", sc_error());
        sc_weights a, b;
        CHECKF(weights_load(&a, dir) == 0, "aligned: %s", sc_error());
        CHECKF(weights_load(&b, odd) == 0, "misaligned: %s", sc_error());
        if (check_failures) break;
        const st_tensor *t = st_find(&b.st, "model.embed_tokens.weight.scale");
        CHECKF(t && ((uintptr_t)t->data & 1), "the scales of the copy should sit at an odd address");
        same_matrix(&a.embed, &b.embed, "embed");
        same_matrix(&a.layers[0].wq, &b.layers[0].wq, "wq");
        same_matrix(&a.layers[0].wdown, &b.layers[0].wdown, "wdown");
        weights_free(&a), weights_free(&b);
    }
    model_free(&m);
    md_remove(base);
    return check_result("test_infer_int8_align");
}
