/* commands_train.h — the subcommands implemented in train/ (declared for smallcoder.c via commands.h). */
#ifndef SC_COMMANDS_TRAIN_H
#define SC_COMMANDS_TRAIN_H

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);

#endif
