/* commands_infer.h — the subcommands implemented in infer/ (declared for smallcoder.c via commands.h). */
#ifndef SC_COMMANDS_INFER_H
#define SC_COMMANDS_INFER_H

#include "host/model.h"

int cmd_quantize(int argc, char **argv);
int cmd_complete(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_infer_bench(int argc, char **argv);

/* Writes m as an INT8 model directory (model.safetensors + config.json); used by cmd_quantize and the tests. */
int quantize_model(const sc_model *m, const char *out, int group);

#endif
