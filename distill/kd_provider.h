/* kd_provider.h — distillation as train/'s loss hook (train/loss_hook.h): what the command layer passes to
 * cmd_train. */
#ifndef SC_KD_PROVIDER_H
#define SC_KD_PROVIDER_H

#include "train/loss_hook.h"

extern const train_kd_provider kd_train_provider;

#endif
