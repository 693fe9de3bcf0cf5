/* test_safetensors.c — safetensors round trip (F32/F16/BF16/I8), every corruption the reader must refuse, and
 * model_load's name and shape validation. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/check.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/half.h"
#include "host/model.h"
#include "host/safetensors.h"

/* Writes a file whose header is `json` followed by `data_len` zero bytes. */
static void write_raw(const char *path, const char *json, size_t data_len, int64_t header_len_override) {
    FILE *f = fopen(path, "wb");
    uint64_t hl = header_len_override >= 0 ? (uint64_t)header_len_override : strlen(json);
    for (int i = 0; i < 8; i++) fputc((int)((hl >> (8 * i)) & 0xff), f);
    fputs(json, f);
    for (size_t i = 0; i < data_len; i++) fputc(0, f);
    fclose(f);
}

static int open_raw(const char *json, size_t data_len, int64_t hl) {
    write_raw("st_bad.safetensors", json, data_len, hl);
    st_file f;
    int rc = st_open(&f, "st_bad.safetensors");
    if (rc == 0) st_close(&f);
    return rc;
}

static void test_round_trip(void) {
    float a[6] = {1, -2, 3.5f, 1e-3f, 65504, -0.0f};
    uint16_t h[6], b[6];
    int8_t q[5] = {-128, -1, 0, 1, 127};
    for (int i = 0; i < 6; i++) h[i] = float_to_half(a[i]), b[i] = float_to_bf16(a[i]);
    st_entry e[4] = {
        {.name = "a", .dtype = ST_F32, .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "h", .dtype = ST_F16, .ndim = 1, .shape = {6}, .data = h},
        {.name = "b", .dtype = ST_BF16, .ndim = 1, .shape = {6}, .data = b},
        {.name = "q", .dtype = ST_I8, .ndim = 1, .shape = {5}, .data = q},
    };
    const char *md[] = {"format", "pt", NULL};
    CHECK(st_write("st_rt.safetensors", e, 4, md) == 0);
    st_file f;
    CHECK(st_open(&f, "st_rt.safetensors") == 0);
    CHECK(f.ntensors == 4);
    CHECK(f.metadata_json && strstr(f.metadata_json, "\"format\":\"pt\""));
    const st_tensor *t = st_find(&f, "a");
    CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    CHECK(((uintptr_t)t->data & 7) == 0); /* data section is 8-byte aligned */
    float out[6];
    CHECK(st_read_f32(&f, t, out) == 0 && memcmp(out, a, sizeof a) == 0);
    CHECK(st_read_f32(&f, st_find(&f, "h"), out) == 0);
    for (int i = 0; i < 6; i++) CHECK(out[i] == a[i] || (i == 3 && out[i] > 0.00099f && out[i] < 0.00101f));
    CHECK(st_read_f32(&f, st_find(&f, "b"), out) == 0);
    for (int i = 0; i < 6; i++) CHECK(out[i] == a[i] || (out[i] != 0 && (out[i] - a[i]) / a[i] < 0.01f));
    t = st_find(&f, "q");
    CHECK(t && t->dtype == ST_I8 && memcmp(t->data, q, 5) == 0);
    CHECK_FAILS_WITH(st_read_f32(&f, t, out), "dtype I8, expected a float type");
    st_close(&f);
    unlink("st_rt.safetensors");
}

static void test_corruptions(void) {
    st_file f;
    CHECK_FAILS_WITH(st_open(&f, "missing.safetensors"), "missing.safetensors: cannot open");
    write_raw("st_bad.safetensors", "", 0, 0);
    truncate("st_bad.safetensors", 5);
    CHECK_FAILS_WITH(st_open(&f, "st_bad.safetensors"), "too short");
    CHECK_FAILS_WITH(open_raw("{}", 0, 1000), "header length 1000 is invalid");
    CHECK_FAILS_WITH(open_raw("{\"a\": {\"dtype\": \"F32\"", 0, -1), "not a valid JSON object");
    CHECK_FAILS_WITH(open_raw("{\"a\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8, -1),
                     "dtype F64 is not supported");
    CHECK_FAILS_WITH(open_raw("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4, -1),
                     "past the end of the data");
    CHECK_FAILS_WITH(open_raw("{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8, -1),
                     "need 12");
    CHECK_FAILS_WITH(open_raw("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                              " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12, -1),
                     "overlap");
    CHECK_FAILS_WITH(open_raw("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                              " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, -1),
                     "appears twice");
    CHECK_FAILS_WITH(open_raw("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, -1),
                     "shape[0]");
    CHECK_FAILS_WITH(open_raw("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", 8, -1),
                     "data_offsets [8, 4] are invalid");
    CHECK_FAILS_WITH(open_raw("{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, -1), "data_offsets must be");
    unlink("st_bad.safetensors");
}

/* A tiny model saved, then damaged in the ways a user's checkpoint can be. */
static void test_model_validation(void) {
    sc_config c;
    config_preset(&c, "tiny");
    sc_model m, m2;
    model_create(&m, &c);
    model_init_weights(&m, 7, 0.02f);
    mkdir("st_model", 0755);
    CHECK(model_save(&m, "st_model") == 0);
    CHECK(model_load(&m2, "st_model") == 0);
    CHECK(m2.nparams == m.nparams && memcmp(m2.params, m.params, sizeof(float) * (size_t)m.nparams) == 0);
    model_free(&m2);

    /* same weights, config with a different shape */
    sc_config wrong = c;
    wrong.intermediate_size += 8;
    config_save(&wrong, "st_model/config.json");
    CHECK_FAILS_WITH(model_load(&m2, "st_model"), "config says [");
    /* untied config: lm_head.weight missing */
    wrong = c;
    wrong.tie_word_embeddings = 0;
    config_save(&wrong, "st_model/config.json");
    CHECK_FAILS_WITH(model_load(&m2, "st_model"), "missing tensor lm_head.weight");
    config_save(&c, "st_model/config.json");

    /* an extra tensor */
    st_entry e[2];
    float x[2] = {0};
    e[0] = (st_entry){.name = "model.embed_tokens.weight", .dtype = ST_F32, .ndim = 2, .shape = {c.vocab_size, c.hidden_size}, .data = m.params};
    e[1] = (st_entry){.name = "model.extra.weight", .dtype = ST_F32, .ndim = 1, .shape = {2}, .data = x};
    sc_model full;
    model_create(&full, &c);
    st_entry *all = calloc((size_t)m.ntensors + 1, sizeof(st_entry));
    for (int i = 0; i < m.ntensors; i++)
        all[i] = (st_entry){.name = m.table[i].name, .dtype = ST_F32, .ndim = m.table[i].ndim,
                            .shape = {m.table[i].shape[0], m.table[i].shape[1]}, .data = m.params + m.table[i].offset};
    all[m.ntensors] = e[1];
    CHECK(st_write("st_model/model.safetensors", all, m.ntensors + 1, NULL) == 0);
    CHECK_FAILS_WITH(model_load(&m2, "st_model"), "unexpected tensor model.extra.weight");
    /* truncated weights file */
    CHECK(st_write("st_model/model.safetensors", all, m.ntensors, NULL) == 0);
    struct stat sb;
    stat("st_model/model.safetensors", &sb);
    truncate("st_model/model.safetensors", sb.st_size - 100);
    CHECK_FAILS_WITH(model_load(&m2, "st_model"), "past the end of the data");
    free(all);
    model_free(&full);
    model_free(&m);
    unlink("st_model/model.safetensors");
    unlink("st_model/config.json");
    rmdir("st_model");
}

int main(void) {
    test_round_trip();
    test_corruptions();
    test_model_validation();
    return check_result("test_safetensors");
}
