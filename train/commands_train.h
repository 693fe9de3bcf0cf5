/* commands_train.h — the subcommands implemented in train/ (declared for smallcoder.c via commands.h). */
#ifndef SC_COMMANDS_TRAIN_H
#define SC_COMMANDS_TRAIN_H

typedef struct train_kd_provider train_kd_provider;

/* kd: distillation's loss hook (train/loss_hook.h), wired by the command layer; NULL refuses --teacher(-logits) */
int cmd_train(int argc, char **argv, const train_kd_provider *kd);
int cmd_eval(int argc, char **argv);
/* `smallcoder lora merge|init` (train/cmd_lora.c) */
int cmd_lora(int argc, char **argv);

#endif
