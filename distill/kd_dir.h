/* kd_dir.h — pairing the shards of a directory with their .kd files: DIR/<split>-*.tok in name order (the order
 * data/loader.c streams them in) and KD_DIR/<same name>.kd. */
#ifndef SC_KD_DIR_H
#define SC_KD_DIR_H

/* The shard file names (no directory) of split in dir ("all" = every *.tok), sorted; *names is malloc'd, each
 * entry too. Returns the count (0 when none) or -1 on error. */
int kd_dir_list_shards(const char *dir, const char *split, char ***names);
void kd_dir_free_names(char **names, int n);
/* KD_DIR/<name without .tok>.kd into buf. */
char *kd_dir_kd_path(char *buf, size_t size, const char *kd_dir, const char *shard_name);

#endif
