/* safetensors_set.c — model.safetensors or an index + shards as one set of tensors (see safetensors_set.h). */
#include "host/safetensors_set.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/error.h"
#include "host/fileio.h"

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int set_add_file(st_set *s, const char *path) {
    s->files = realloc(s->files, (size_t)(s->nfiles + 1) * sizeof(st_file));
    if (!s->files) return sc_fail("out of memory");
    if (st_open(&s->files[s->nfiles], path)) return -1;
    s->ntensors += s->files[s->nfiles].ntensors;
    s->bytes += s->files[s->nfiles].map_len;
    s->nfiles++;
    return 0;
}

/* index of the shard called name among the files opened so far, or -1 */
static int shard_index(const st_set *s, const char *dir, const char *name) {
    char path[4096];
    path_join(path, sizeof path, dir, name);
    for (int i = 0; i < s->nfiles; i++)
        if (strcmp(s->files[i].path, path) == 0) return i;
    return -1;
}

static int open_index(st_set *s, const char *dir, const char *ipath) {
    char *text;
    size_t len;
    if (file_read_all(ipath, &text, &len)) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    int rc = 0;
    const cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!root || !cJSON_IsObject(root)) rc = sc_fail("%s: not a JSON object (invalid JSON)", ipath);
    else if (!cJSON_IsObject(map) || !map->child)
        rc = sc_fail("%s: field weight_map must be a non-empty object {tensor: shard file}", ipath);
    /* open each distinct shard once, in the order the index first names it */
    for (const cJSON *it = map ? map->child : NULL; it && !rc; it = it->next) {
        if (!cJSON_IsString(it) || !it->valuestring[0] || strchr(it->valuestring, '/'))
            rc = sc_fail("%s: weight_map[%s] must be a file name in the model directory", ipath, it->string);
        else if (shard_index(s, dir, it->valuestring) < 0) {
            char path[4096];
            path_join(path, sizeof path, dir, it->valuestring);
            if (!file_exists(path))
                rc = sc_fail("%s: shard %s named by %s is missing", dir, it->valuestring, ipath);
            else
                rc = set_add_file(s, path);
        }
    }
    /* every tensor the index names is in the shard it names */
    for (const cJSON *it = map ? map->child : NULL; it && !rc; it = it->next) {
        int k = shard_index(s, dir, it->valuestring);
        if (!st_find(&s->files[k], it->string))
            rc = sc_fail("%s: tensor %s is named by the index but absent from shard %s", ipath, it->string,
                         it->valuestring);
    }
    cJSON_Delete(root);
    return rc;
}

int st_set_open(st_set *s, const char *dir) {
    memset(s, 0, sizeof *s);
    char path[4096], ipath[4096];
    path_join(path, sizeof path, dir, "model.safetensors");
    path_join(ipath, sizeof ipath, dir, "model.safetensors.index.json");
    int rc;
    if (file_exists(path) || !file_exists(ipath)) {
        rc = set_add_file(s, path);
        s->desc = strdup(path);
    } else {
        rc = open_index(s, dir, ipath);
        char d[4200];
        snprintf(d, sizeof d, "%s (%d shards)", ipath, s->nfiles);
        s->desc = strdup(d);
    }
    /* a tensor in two shards would make the model depend on lookup order */
    for (int i = 0; i < s->nfiles && !rc && s->nfiles > 1; i++)
        for (int t = 0; t < s->files[i].ntensors && !rc; t++)
            for (int j = i + 1; j < s->nfiles && !rc; j++)
                if (st_find(&s->files[j], s->files[i].tensors[t].name))
                    rc = sc_fail("%s: tensor %s is in both %s and %s", dir, s->files[i].tensors[t].name,
                                 s->files[i].path, s->files[j].path);
    if (rc) {
        st_set_close(s);
        return -1;
    }
    return 0;
}

void st_set_close(st_set *s) {
    for (int i = 0; i < s->nfiles; i++) st_close(&s->files[i]);
    free(s->files);
    free(s->desc);
    memset(s, 0, sizeof *s);
}

const st_tensor *st_set_find(const st_set *s, const char *name, const st_file **file) {
    for (int i = 0; i < s->nfiles; i++) {
        const st_tensor *t = st_find(&s->files[i], name);
        if (t) {
            if (file) *file = &s->files[i];
            return t;
        }
    }
    return NULL;
}

const st_tensor *st_set_tensor(const st_set *s, int i) {
    for (int f = 0; f < s->nfiles; f++) {
        if (i < s->files[f].ntensors) return &s->files[f].tensors[i];
        i -= s->files[f].ntensors;
    }
    return NULL;
}
