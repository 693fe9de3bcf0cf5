/* commands_host.h — the subcommands implemented in host/ (declared for smallcoder.c via commands.h). */
#ifndef SC_COMMANDS_HOST_H
#define SC_COMMANDS_HOST_H

int cmd_init(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_forward(int argc, char **argv);

#endif
