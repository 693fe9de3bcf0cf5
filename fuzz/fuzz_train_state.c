/* fuzz_train_state.c — trainer_state.json as --resume reads it: train/train_state.c train_state_from_json, then
 * the data loader's position in it (data/loader.c loader_state_from_json). */
#include <cjson/cJSON.h>

#include "data/loader.h"
#include "fuzz/fuzz_common.h"
#include "train/trainer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1); /* the parser takes a NUL-terminated text, as file_read_all gives it */
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = 0;
    train_state s;
    lr_schedule sched;
    cJSON *dstate = NULL, *options = NULL;
    if (train_state_from_json(text, "trainer_state.json", &s, &sched, &dstate, &options) == 0) {
        loader_state ls;
        (void)loader_state_from_json(dstate, &ls);
        cJSON_Delete(dstate);
        cJSON_Delete(options);
    }
    free(text);
    return 0;
}
