/* commands.h — every subcommand's entry point; each lives in the directory of its stage. */
#ifndef SC_COMMANDS_H
#define SC_COMMANDS_H

#include "model/commands_model.h"

#ifdef SC_HAVE_DATA
int cmd_shard_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
#endif
#ifdef SC_HAVE_TRAIN
#include "train/commands_train.h"
#endif
#ifdef SC_HAVE_DISTILL
int cmd_teacher(int argc, char **argv);
#include "distill/kd_provider.h"
#endif
#ifdef SC_HAVE_INFER
#include "infer/commands_infer.h"
#endif

#endif
