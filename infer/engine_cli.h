/* engine_cli.h — the engine options complete, serve and infer-bench share (--kv, --device, --precision,
 * --threads): one table of rows instead of a copy in each command. The choices come from their name tables
 * (SC_ARG_ENUM), so --help lists them and the parser refuses another value in one line. */
#ifndef SC_INFER_ENGINE_CLI_H
#define SC_INFER_ENGINE_CLI_H

#include "host/args.h"
#include "host/device.h"   /* device_names */
#include "host/engine.h"   /* engine_precision_names, sc_engine_opts */
#include "host/kv_cache.h" /* kv_type_names */

typedef struct {
    sc_enum kv, device, precision;
    int threads; /* CPU threads (0 = all cores): the command's sc_command.threads */
} sc_engine_cli;

#define ENGINE_CLI_DEFAULTS                                                                                        \
    {.kv = {SC_KV_F16, kv_type_names}, .device = {DEVICE_AUTO, device_names},                                      \
     .precision = {ENGINE_PRECISION_AUTO, engine_precision_names}}
#define ENGINE_CLI_ARGS(c)                                                                                         \
    {"kv", 0, SC_ARG_ENUM, &(c).kv, "KV cache type", 0},                                                           \
    {"device", 0, SC_ARG_ENUM, &(c).device, "where to run", 0},                                                    \
    {"precision", 0, SC_ARG_ENUM, &(c).precision,                                                                  \
     "CUDA weights (auto: FP16 when it fits the free device memory and the card is fast enough, else INT8)", 0},   \
    {"threads", 't', SC_ARG_INT, &(c).threads, "CPU threads (0 = all cores)", 0}

/* The sc_engine_opts fields the options set, as designated initializers; nthreads: the threads in effect
 * (sc_command.nthreads). --device is resolved by engine_open: auto falls back to the CPU when the CUDA engine
 * cannot take the model. */
#define ENGINE_CLI_OPTS(c, nthreads)                                                                               \
    .device = device_names[(c).device.value], .kv_type = (c).kv.value, .threads = (nthreads),                      \
    .precision = engine_precision_names[(c).precision.value]

#endif
