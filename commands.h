/* commands.h — every subcommand's entry point; each lives in the directory of its stage. */
#ifndef SC_COMMANDS_H
#define SC_COMMANDS_H

/* host/ */
int cmd_init(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_forward(int argc, char **argv);

#endif
