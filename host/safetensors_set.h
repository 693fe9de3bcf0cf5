/* safetensors_set.h — the weights of a model directory as published: one model.safetensors, or shards named by
 * model.safetensors.index.json ({"weight_map": {tensor: shard file}}). Every shard is mmapped (nothing is read
 * until a tensor is converted), so a sharded BF16 model costs its FP32 copy plus page cache, never 3x. */
#ifndef SC_SAFETENSORS_SET_H
#define SC_SAFETENSORS_SET_H

#include "host/safetensors.h"

typedef struct {
    st_file *files;
    int nfiles;
    int ntensors;     /* over all files */
    char *desc;       /* "DIR/model.safetensors" or "DIR/model.safetensors.index.json (N shards)": for messages */
    size_t bytes;     /* sum of the file sizes */
} st_set;

/* Opens dir's weights: model.safetensors when present, else the index and every shard it names. A shard that is
 * missing, a tensor the index names but its shard lacks, or a tensor in two shards is one clear error. */
int st_set_open(st_set *s, const char *dir);
void st_set_close(st_set *s);
/* The tensor called name in whichever file holds it, or NULL; *file (optional) gets that file. */
const st_tensor *st_set_find(const st_set *s, const char *name, const st_file **file);
/* The i-th tensor over all files (0 <= i < ntensors), for iterating. */
const st_tensor *st_set_tensor(const st_set *s, int i);

#endif
