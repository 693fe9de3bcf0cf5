/* args.h — declarative command-line options shared by every subcommand, so `--help` and errors look the same
 * everywhere. A command lists its options in a table; sc_args_parse fills them and collects positionals. */
#ifndef SC_ARGS_H
#define SC_ARGS_H

#include <stdint.h>

typedef enum {
    SC_ARG_FLAG,   /* int, set to 1 when present */
    SC_ARG_INT,    /* int */
    SC_ARG_I64,    /* int64_t, accepts k/M/G suffixes (1000-based): --tokens 5M */
    SC_ARG_FLOAT,  /* float */
    SC_ARG_STR,    /* const char * pointing into argv */
    SC_ARG_BYTES,  /* int64_t bytes, accepts KiB/MiB/GiB/KB/MB/GB suffixes: --vram-budget 1.75GiB */
    SC_ARG_ENUM,   /* sc_enum: a choice parsed once to its index; another value is a usage error naming them all */
    SC_ARG_LIST,   /* sc_arg_list: a repeatable option, each value appended (--lora A --lora B) */
} sc_arg_type;

/* The values of repeatable options in command-line order. Several options may share one list (--lora and
 * --lora-scaled): opt[i] names the option that gave value[i]. */
enum { SC_ARG_LIST_MAX = 16 };
typedef struct {
    const char *value[SC_ARG_LIST_MAX];
    const char *opt[SC_ARG_LIST_MAX];
    int n;
} sc_arg_list;

/* A choice option's value (the index in names, preset to the default) and its NULL-terminated names. */
typedef struct {
    int value;
    const char *const *names;
} sc_enum;

typedef struct {
    const char *name;     /* long name without dashes, e.g. "model" */
    char shortname;       /* optional one-letter alias (-t), or 0 */
    sc_arg_type type;
    void *dst;
    const char *help;     /* one line; the default is printed from *dst when it is set */
    int required;
} sc_arg;

typedef struct {
    const char *command;   /* "smallcoder forward" */
    const char *usage;     /* "--model DIR --ids FILE [options]" */
    const char *summary;   /* one paragraph printed under the usage line */
    const sc_arg *args;
    int nargs;
    int min_positional, max_positional;  /* max -1 = unlimited */
} sc_cli;

/* Parses argv[1..] (argv[0] is the command name). Positionals are compacted into argv[0..*npos-1].
 * Returns 0 to proceed, 1 when --help was printed (exit 0), 2 on a usage error (already printed, exit 2). */
int sc_args_parse(const sc_cli *cli, int argc, char **argv, int *npos);
void sc_args_help(const sc_cli *cli);

/* The index of value among names (NULL-terminated), else -1 with sc_error "--opt must be a, b or c, got 'value'":
 * the one wording of a bad choice, for SC_ARG_ENUM and for choices checked later (device_resolve). */
int sc_enum_index(const char *opt, const char *const *names, const char *value);

/* Bounds of numeric options, kept beside the option table (sc_arg stays as it is): a command lists them and calls
 * sc_args_check_ranges after sc_args_parse, so a value outside is refused with one line naming the flag. */
typedef struct {
    const char *name;     /* the option's long name */
    double min, max;
} sc_arg_range;

/* Most CPU threads an option accepts (0 = all cores); every --threads has the range {0, SC_THREADS_MAX}. */
#define SC_THREADS_MAX 1024
#define SC_RANGE_THREADS {"threads", 0, SC_THREADS_MAX}

/* The options that commands share word for word, so their --help reads the same: --threads/-t of the CPU commands
 * (an int: with SC_RANGE_THREADS, and sc_command's .threads) and --device (an sc_enum of device_names, sc_command's
 * .device). */
#define SC_ARG_THREADS(dst) {"threads", 't', SC_ARG_INT, (dst), "CPU threads (0 = all cores)", 0}
#define SC_ARG_DEVICE(dst) {"device", 0, SC_ARG_ENUM, (dst), "where to run", 0}

/* Checks the parsed values of the options in r[0..n-1]. Returns 0, or 2 after printing
 * "smallcoder complete: option --top-p 2 is out of range [0, 1] (see smallcoder complete --help)". */
int sc_args_check_ranges(const sc_cli *cli, const sc_arg_range *r, int n);
/* The range listed for option name, or NULL. */
const sc_arg_range *sc_arg_range_find(const sc_arg_range *r, int n, const char *name);

/* Parses "1.75GiB", "512MiB", "2e9" into bytes; returns -1 on error. */
int64_t sc_parse_bytes(const char *s);

#endif
