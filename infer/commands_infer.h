/* commands_infer.h — the subcommands implemented in infer/ (declared for smallcoder.c via commands.h). */
#ifndef SC_COMMANDS_INFER_H
#define SC_COMMANDS_INFER_H

int cmd_quantize(int argc, char **argv);
int cmd_complete(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_infer_bench(int argc, char **argv);

#endif
