/* cmd_shard_info.c — `smallcoder shard-info`: prints a token shard's header, verifies every frame (CRC, sizes,
 * ids) and optionally dumps the ids, so a shard can be inspected or checked without training on it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/args.h"
#include "host/command.h"
#include "host/error.h"
#include "data/shard.h"

static int show_shard(const char *path, int ids, int quiet) {
    shard_reader *r;
    if (shard_open(&r, path)) return -1;
    const shard_header *h = shard_info(r);
    int rc = 0;
    if (ids) {
        int32_t *buf = sc_malloc((size_t)h->frame_tokens * sizeof *buf);
        for (uint32_t f = 0; f < h->frame_count && rc == 0; f++) {
            rc = shard_read_frame(r, f, buf);
            for (uint32_t k = 0; rc == 0 && k < shard_frame_info(r, f)->token_count; k++)
                printf(f == 0 && k == 0 ? "%d" : " %d", buf[k]);
        }
        if (rc == 0) printf("\n");
        free(buf);
    } else {
        rc = shard_verify(r);
    }
    if (rc == 0 && !quiet) {
        struct stat st;
        uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
        printf("%s: version %u, %u-byte ids, vocab %u, %" PRIu64 " tokens, %" PRIu64 " documents, tokenizer %016" PRIx64
               ", %u frames of %u tokens, %.2f MB (%.2fx), verified\n",
               path, h->version, h->dtype, h->vocab_size, h->token_count, h->doc_count, h->tokenizer_hash,
               h->frame_count, h->frame_tokens, (double)size / 1e6,
               size ? (double)(h->token_count * h->dtype) / (double)size : 0.0);
    }
    shard_close(r);
    return rc;
}

int cmd_shard_info(int argc, char **argv) {
    int ids = 0;
    const sc_arg args[] = {
        {"ids", 0, SC_ARG_FLAG, &ids, "print the shard's token ids on one line instead of its header", 0},
    };
    const sc_cli cli = {"smallcoder shard-info", "[--ids] SHARD.tok...",
                        "Prints each token shard's header and checks every frame (sizes, CRC-32C, ids < vocab). "
                        "Exits 1 naming the shard and frame at the first corruption.",
                        args, 1, 1, -1};
    sc_command cmd = {.cli = &cli};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    for (int i = 0; i < cmd.npos; i++) {
        if (show_shard(argv[i], ids, ids)) {
            fprintf(stderr, "smallcoder shard-info: %s\n", sc_error());
            return 1;
        }
    }
    return 0;
}
