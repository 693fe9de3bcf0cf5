/* command.h — the start every subcommand makes, written once: parse its options and check their ranges; then,
 * after the checks of its own, resolve --device and set the CPU threads; and its one-line failure. A command
 * fills the struct with what it has; what it loads after that (model, weights, shards) stays its own. */
#ifndef SC_COMMAND_H
#define SC_COMMAND_H

#include "host/args.h"

typedef struct {
    const sc_cli *cli;
    const sc_arg_range *ranges; /* bounds of numeric options (sc_args_check_ranges), or NULL */
    int nranges;
    const sc_enum *device;      /* the command's --device (device_names), or NULL: the command resolves none */
    int auto_prefers_cuda;      /* what --device auto means here (device_resolve) */
    const int *threads;         /* the command's --threads (0 = all cores), or NULL: the thread count is left alone */
    /* set by sc_command_parse and sc_command_setup */
    int status;                 /* when either returns 1: the status the command exits with at once */
    int npos;                   /* positionals, compacted into argv[0..npos-1] */
    int use_cuda;               /* --device resolved: 1 = CUDA, 0 = the CPU (0 without device) */
    int nthreads;               /* the threads in effect (0 without threads) */
} sc_command;

/* .ranges and .nranges from a static array of sc_arg_range */
#define SC_COMMAND_RANGES(r) .ranges = (r), .nranges = (int)(sizeof(r) / sizeof((r)[0]))

/* Parses argv (argv[0] is the command name) and checks the ranges. Returns 0 to go on, or 1 to stop with
 * c->status: 0 after --help, 2 after printing a usage error (a bad choice or value included). */
int sc_command_parse(sc_command *c, int argc, char **argv);
/* After the command's own checks of its options: resolves c->device, sets c->threads. Returns 0 to go on, or 1 to
 * stop with c->status 1 after printing why the device cannot be had ("smallcoder forward: --device cuda: no CUDA
 * device is visible ..."). */
int sc_command_setup(sc_command *c);
/* Prints "<command>: <sc_error()>" on stderr and returns 1: a command's failure after the start. */
int sc_command_fail(const sc_command *c);

#endif
