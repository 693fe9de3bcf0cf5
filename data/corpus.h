/* corpus.h — the source-file side of `smallcoder tokenize`: walking files and directories into a sorted file
 * list (extension and size filters) and classifying file contents (text, binary, not UTF-8). */
#ifndef SC_CORPUS_H
#define SC_CORPUS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *path;
    uint64_t size;
} corpus_file;

typedef struct {
    corpus_file *files;
    size_t n, cap;
    uint64_t total_bytes;        /* sum of the listed files' sizes */
    uint64_t skipped_ext;        /* extension not in --ext */
    uint64_t skipped_large;      /* larger than max_file_size */
    uint64_t skipped_unreadable; /* cannot stat / open directory */
    uint64_t skipped_other;      /* hidden entries, symlinked directories, sockets/devices */
} corpus_list;

typedef struct {
    char **exts;                 /* suffixes such as ".py"; NULL/0 = every file */
    int n_exts;
    uint64_t max_file_size;      /* 0 = no limit */
} corpus_filter;

/* Parses ".py,.c,h" into f->exts (a missing leading dot is added; matched case-insensitively, as
 * `tokenizer train` does); "*" means every file. Returns 0 or -1 (empty item). */
int corpus_filter_parse_exts(corpus_filter *f, const char *spec);
void corpus_filter_free(corpus_filter *f);

/* Appends every file under paths to list: arguments in the order given, each directory's entries sorted by
 * name (bytewise) and walked depth-first, so the list is the same on every machine. Hidden entries (.git,
 * .venv, .DS_Store, ...) and symlinks to directories (cycles) are skipped, as `tokenizer train` does. A path argument that does not
 * exist is an error; unreadable entries inside a walk are counted and skipped. */
int corpus_walk(corpus_list *list, char *const *paths, int npaths, const corpus_filter *f);
void corpus_list_free(corpus_list *list);

typedef enum {
    CORPUS_TEXT = 0,
    CORPUS_EMPTY,
    CORPUS_BINARY,      /* contains a NUL byte */
    CORPUS_NOT_UTF8,    /* invalid UTF-8 (Latin-1 files, images without NULs in the sampled part, ...) */
} corpus_kind;

corpus_kind corpus_classify(const char *data, size_t n);

#endif
