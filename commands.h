/* commands.h — every subcommand's entry point; each lives in the directory of its stage. */
#ifndef SC_COMMANDS_H
#define SC_COMMANDS_H

#include "commands_host.h"

#endif
