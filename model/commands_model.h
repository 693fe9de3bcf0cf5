/* commands_model.h — the subcommands implemented in model/ (declared for smallcoder.c via commands.h). */
#ifndef SC_COMMANDS_MODEL_H
#define SC_COMMANDS_MODEL_H

int cmd_init(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_forward(int argc, char **argv);

#endif
