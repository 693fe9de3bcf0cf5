/* quantize.c — writes a model as an INT8 model directory (weight-only, symmetric, FP16 scales per row or per
 * group; embeddings and lm_head too): the library side of `smallcoder quantize`. Format: docs/inference.md. */
#include "infer/quantize.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/error.h"
#include "host/fileio.h"
#include "host/quant.h"

/* config.json = the model's config + quantization_config, written atomically */
static int write_config(const sc_config *cfg, const char *dir, int group) {
    char path[4096], *text;
    size_t len;
    path_join(path, sizeof path, dir, "config.json");
    if (config_save(cfg, path) || file_read_all(path, &text, &len)) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return sc_fail("%s: cannot re-read the config just written", path);
    cJSON *qc = cJSON_AddObjectToObject(root, "quantization_config");
    cJSON_AddStringToObject(qc, "quant_method", "smallcoder-int8");
    cJSON_AddNumberToObject(qc, "bits", 8);
    cJSON_AddNumberToObject(qc, "group_size", group);
    cJSON_AddBoolToObject(qc, "symmetric", 1);
    cJSON_AddStringToObject(qc, "scale_dtype", "float16");
    cJSON_AddStringToObject(qc, "scale_suffix", ".scale");
    cJSON_AddStringToObject(qc, "activations", "int8 per token (per group), dynamic");
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    int rc = atomic_write_file(path, out, strlen(out));
    free(out);
    return rc;
}

int quantize_model(const sc_model *m, const char *out, int group) {
    int n = m->ntensors, ne = 0;
    st_entry *e = sc_calloc((size_t)2 * n, sizeof(st_entry));
    void **bufs = sc_calloc((size_t)2 * n, sizeof(void *));
    char (*snames)[96] = sc_calloc((size_t)n, sizeof *snames);
    for (int i = 0; i < n; i++) {
        const sc_param *p = &m->table[i];
        const float *w = m->params + p->offset;
        if (p->ndim != 2) { /* norms stay FP32 */
            e[ne++] = (st_entry){.name = p->name, .dtype = ST_F32, .ndim = 1, .shape = {p->shape[0]}, .data = w};
            continue;
        }
        int rows = (int)p->shape[0], cols = (int)p->shape[1], ng = quant_ngroups(cols, group);
        int8_t *q = sc_malloc((size_t)rows * cols);
        uint16_t *s = sc_malloc((size_t)rows * ng * sizeof(uint16_t));
        quant_rows(w, rows, cols, group, q, s);
        bufs[2 * i] = q, bufs[2 * i + 1] = s;
        snprintf(snames[i], sizeof snames[i], "%s.scale", p->name);
        e[ne++] = (st_entry){.name = p->name, .dtype = ST_I8, .ndim = 2, .shape = {rows, cols}, .data = q};
        e[ne++] = (st_entry){.name = snames[i], .dtype = ST_F16, .ndim = 2, .shape = {rows, ng}, .data = s};
    }
    int rc = 0;
    if (mkdir(out, 0755) != 0 && errno != EEXIST) rc = sc_fail("%s: cannot create directory (%s)", out, strerror(errno));
    char path[4096], gs[16];
    snprintf(gs, sizeof gs, "%d", group);
    const char *const metadata[] = {"format", "pt", "quantization", "smallcoder-int8", "group_size", gs, NULL};
    if (!rc) rc = st_write(path_join(path, sizeof path, out, "model.safetensors"), e, ne, metadata);
    if (!rc) rc = write_config(&m->cfg, out, group);
    for (int i = 0; i < 2 * n; i++) free(bufs[i]);
    free(bufs), free(e), free(snames);
    return rc;
}
