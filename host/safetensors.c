/* safetensors.c — see safetensors.h. Tensors are written sorted by name with 8-byte-aligned data, as the
 * Python reference implementation does, so files compare equal across writers. */
#include "host/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/error.h"
#include "host/fileio.h"
#include "host/half.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {[ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
              [ST_I8] = {"I8", 1},   [ST_I32] = {"I32", 4}, [ST_U8] = {"U8", 1}};

const char *st_dtype_name(st_dtype t) { return dtypes[t].name; }

static int parse_dtype(const char *s, st_dtype *out) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    return -1;
}

typedef struct {
    size_t begin, end;
    const char *name;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* Parses and validates one header entry; data_len is the size of the byte buffer after the header. */
static int parse_entry(const char *path, const cJSON *item, st_tensor *t, size_t data_len, const uint8_t *data) {
    const char *name = item->string;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsObject(item)) return sc_fail("%s: header entry %s is not an object", path, name);
    if (!cJSON_IsString(dt)) return sc_fail("%s: tensor %s: missing field dtype", path, name);
    if (parse_dtype(dt->valuestring, &t->dtype))
        return sc_fail("%s: tensor %s: dtype %s is not supported (expected F32, F16, BF16, I8, I32 or U8)", path, name,
                       dt->valuestring);
    if (!cJSON_IsArray(shape)) return sc_fail("%s: tensor %s: missing field shape", path, name);
    t->ndim = cJSON_GetArraySize(shape);
    if (t->ndim > ST_MAX_DIMS) return sc_fail("%s: tensor %s: %d dimensions (at most %d)", path, name, t->ndim, ST_MAX_DIMS);
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        const cJSON *s = cJSON_GetArrayItem(shape, d);
        if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble != floor(s->valuedouble) || s->valuedouble > 1e12)
            return sc_fail("%s: tensor %s: shape[%d] is not a non-negative integer", path, name, d);
        t->shape[d] = (int64_t)s->valuedouble;
        if (t->shape[d] && t->numel > INT64_MAX / 8 / t->shape[d])
            return sc_fail("%s: tensor %s: shape is too large", path, name);
        t->numel *= t->shape[d];
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return sc_fail("%s: tensor %s: field data_offsets must be [begin, end]", path, name);
    double b = cJSON_GetArrayItem(offs, 0)->valuedouble, e = cJSON_GetArrayItem(offs, 1)->valuedouble;
    if (!cJSON_IsNumber(cJSON_GetArrayItem(offs, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(offs, 1)) || b < 0 ||
        e < b || b != floor(b) || e != floor(e))
        return sc_fail("%s: tensor %s: data_offsets [%.0f, %.0f] are invalid", path, name, b, e);
    if (e > (double)data_len)
        return sc_fail("%s: tensor %s: data_offsets end %.0f is past the end of the data (%zu bytes; file truncated?)",
                       path, name, e, data_len);
    t->nbytes = (size_t)(e - b);
    if (t->nbytes != (size_t)t->numel * dtypes[t->dtype].size)
        return sc_fail("%s: tensor %s: data_offsets span %zu bytes but shape and dtype %s need %zu", path, name,
                       t->nbytes, dtypes[t->dtype].name, (size_t)t->numel * dtypes[t->dtype].size);
    t->data = data + (size_t)b;
    t->name = strdup(name);
    return 0;
}

int st_open(st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sc_fail("%s: cannot open (%s)", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sc_fail("%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return sc_fail("%s: file is %zu bytes, too short for a safetensors header (8-byte length)", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return sc_fail("%s: mmap failed (%s)", path, strerror(errno));
    f->path = strdup(path);
    f->map = map;
    f->map_len = size;

    uint64_t hlen = 0;
    const uint8_t *bytes = map;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | bytes[i];
    if (hlen == 0 || hlen > size - 8 || hlen > 100u * 1024 * 1024) {
        sc_fail("%s: header length %llu is invalid for a file of %zu bytes (truncated or not safetensors)", path,
                (unsigned long long)hlen, size);
        st_close(f);
        return -1;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)bytes + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        sc_fail("%s: header is not a valid JSON object", path);
        st_close(f);
        return -1;
    }
    const uint8_t *data = bytes + 8 + hlen;
    size_t data_len = size - 8 - (size_t)hlen;
    int n = cJSON_GetArraySize(root), rc = 0;
    f->tensors = sc_calloc((size_t)n, sizeof(st_tensor));
    span *spans = sc_calloc((size_t)n, sizeof(span));
    for (const cJSON *it = root->child; it && !rc; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) rc = sc_fail("%s: __metadata__ must be an object", path);
            else f->metadata_json = cJSON_PrintUnformatted(it);
            continue;
        }
        if (st_find(f, it->string)) {
            rc = sc_fail("%s: tensor %s appears twice in the header", path, it->string);
            break;
        }
        st_tensor *t = &f->tensors[f->ntensors];
        if ((rc = parse_entry(path, it, t, data_len, data))) break;
        spans[f->ntensors] = (span){(size_t)((const uint8_t *)t->data - data),
                                    (size_t)((const uint8_t *)t->data - data) + t->nbytes, t->name};
        f->ntensors++;
    }
    if (!rc) {
        qsort(spans, (size_t)f->ntensors, sizeof(span), span_cmp);
        for (int i = 1; i < f->ntensors && !rc; i++)
            if (spans[i].begin < spans[i - 1].end && spans[i].end > spans[i].begin)
                rc = sc_fail("%s: tensors %s and %s overlap in the data section", path, spans[i - 1].name, spans[i].name);
    }
    free(spans);
    cJSON_Delete(root);
    if (rc) {
        st_close(f);
        return -1;
    }
    return 0;
}

void st_close(st_file *f) {
    for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    if (f->map) munmap(f->map, f->map_len);
    free(f->path);
    cJSON_free(f->metadata_json);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->ntensors; i++)
        if (f->tensors[i].name && strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

int st_read_f32(const st_file *f, const st_tensor *t, float *dst) {
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case ST_F32: memcpy(dst, src, t->nbytes); return 0;
    case ST_F16:
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = half_to_float(h);
        }
        return 0;
    case ST_BF16:
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = bf16_to_float(h);
        }
        return 0;
    default:
        return sc_fail("%s: tensor %s has dtype %s, expected a float type (F32, F16 or BF16)", f->path, t->name,
                       dtypes[t->dtype].name);
    }
}

/* ---- writer ---- */

static int entry_cmp(const void *a, const void *b) {
    return strcmp((*(const st_entry *const *)a)->name, (*(const st_entry *const *)b)->name);
}

int st_write(const char *path, const st_entry *entries, int n, const char *const *metadata) {
    const st_entry **order = sc_malloc((size_t)(n ? n : 1) * sizeof *order);
    for (int i = 0; i < n; i++) order[i] = &entries[i];
    qsort(order, (size_t)n, sizeof *order, entry_cmp);

    cJSON *root = cJSON_CreateObject();
    if (metadata) {
        cJSON *md = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; metadata[i] && metadata[i + 1]; i += 2) cJSON_AddStringToObject(md, metadata[i], metadata[i + 1]);
    }
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        const st_entry *e = order[i];
        int64_t numel = 1;
        for (int d = 0; d < e->ndim; d++) numel *= e->shape[d];
        size_t nbytes = (size_t)numel * dtypes[e->dtype].size;
        cJSON *t = cJSON_AddObjectToObject(root, e->name);
        cJSON_AddStringToObject(t, "dtype", dtypes[e->dtype].name);
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < e->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + nbytes)));
        offset += nbytes;
    }
    char *header = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t hlen = strlen(header), padded = (hlen + 7) & ~(size_t)7;  /* data starts 8-byte aligned */

    sc_atomic_file af;
    if (atomic_open(&af, path)) {
        cJSON_free(header);
        free(order);
        return -1;
    }
    uint8_t lenbytes[8];
    for (int i = 0; i < 8; i++) lenbytes[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(lenbytes, 1, 8, af.f) == 8 && fwrite(header, 1, hlen, af.f) == hlen;
    for (size_t i = hlen; i < padded && ok; i++) ok = fputc(' ', af.f) != EOF;
    for (int i = 0; i < n && ok; i++) {
        const st_entry *e = order[i];
        int64_t numel = 1;
        for (int d = 0; d < e->ndim; d++) numel *= e->shape[d];
        size_t nbytes = (size_t)numel * dtypes[e->dtype].size;
        ok = fwrite(e->data, 1, nbytes, af.f) == nbytes;
    }
    cJSON_free(header);
    free(order);
    if (!ok) {
        int err = errno;
        atomic_abort(&af);
        return sc_fail("%s: write failed (%s)", path, strerror(err));
    }
    return atomic_commit(&af);
}
