/* cmd_tokenizer.c — `smallcoder tokenizer train|encode|decode`: train a byte-level BPE tokenizer on a corpus
 * (HF tokenizer.json out), print the ids of files, turn ids back into bytes. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/clock.h"
#include "host/args.h"
#include "host/command.h"
#include "host/error.h"
#include "host/fileio.h"
#include "data/token_ids.h"
#include "data/tokenizer.h"
#include "data/corpus.h"
#include "data/tokenizer_train.h"

int cmd_tokenizer(int argc, char **argv); /* declared for the table in commands.h */

static double cpu_s(void) { /* all threads of the process: machine load does not inflate it */
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *sub) {
    fprintf(stderr, "smallcoder tokenizer %s: %s\n", sub, sc_error());
    return 1;
}

static int cmd_train(int argc, char **argv) {
    tokenizer_train_options opt;
    tokenizer_train_defaults(&opt);
    const char *out = NULL, *exts = TOKENIZER_DEFAULT_EXTS;
    int quiet = 0;
    sc_arg args[] = {
        {"vocab-size", 0, SC_ARG_INT, &opt.vocab_size, "ids in all: 6 specials + 256 bytes + merges", 0},
        {"out", 'o', SC_ARG_STR, &out, "tokenizer.json to write (atomically)", 1},
        {"ext", 0, SC_ARG_STR, &exts, "extensions taken from directories, comma-separated, or '*' for all", 0},
        {"min-frequency", 0, SC_ARG_INT, &opt.min_frequency, "never merge a pair seen fewer times", 0},
        {"max-file-size", 0, SC_ARG_BYTES, &opt.max_file_bytes, "skip larger files (counted)", 0},
        {"threads", 0, SC_ARG_INT, &opt.threads, "word-counting threads (0 = all cores)", 0},
        {"quiet", 'q', SC_ARG_FLAG, &quiet, "no progress or summary on stderr", 0},
    };
    sc_cli cli = {"smallcoder tokenizer train", "--out tokenizer.json [options] PATH...",
                  "Trains a byte-level BPE tokenizer (GPT-2 pre-tokenizer regex) on the files and directories\n"
                  "(recursive; hidden entries skipped) and writes an HF tokenizer.json. Ids 0-5 are <|endoftext|>,\n"
                  "<fim_prefix>, <fim_middle>, <fim_suffix>, <fim_pad>, <file_sep>; 6-261 the 256 bytes; then merges.\n"
                  "Binary, unreadable and oversized files are skipped and counted.",
                  args, sizeof args / sizeof args[0], 1, -1};
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS};
    sc_command cmd = {.cli = &cli, SC_COMMAND_RANGES(ranges)};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    int rc = 0;
    opt.progress = !quiet;
    corpus_filter filter = {0};
    corpus_list files = {0};
    if (corpus_filter_parse_exts(&filter, exts)) {
        fprintf(stderr, "smallcoder tokenizer train: --ext '%s': empty item\n", exts);
        return 2;
    }
    filter.max_file_size = opt.max_file_bytes > 0 ? (uint64_t)opt.max_file_bytes : 0;
    rc = corpus_walk(&files, argv, cmd.npos, &filter);
    corpus_filter_free(&filter);
    if (rc) {
        corpus_list_free(&files);
        return fail("train");
    }
    if (!files.n) {
        fprintf(stderr, "smallcoder tokenizer train: no files with extensions %s under the given paths (%llu larger "
                "than --max-file-size, %llu unreadable)\n", strcmp(exts, TOKENIZER_DEFAULT_EXTS) ? exts : "in the default --ext",
                (unsigned long long)files.skipped_large, (unsigned long long)files.skipped_unreadable);
        corpus_list_free(&files);
        return 1;
    }
    char **paths = sc_malloc(files.n * sizeof *paths);
    for (size_t i = 0; i < files.n; i++) paths[i] = files.files[i].path;
    tokenizer_train_stats st;
    double t0 = clock_now();
    rc = tokenizer_train_files(paths, files.n, &opt, out, &st);
    free(paths);
    st.skipped_large += files.skipped_large;
    st.unreadable += files.skipped_unreadable;
    corpus_list_free(&files);
    if (rc) return fail("train");
    if (!quiet)
        fprintf(stderr,
                "wrote %s: vocabulary %d (%d merges) from %zu files, %.1f MB (skipped: %zu binary, %zu not UTF-8, "
                "%zu too large, %zu unreadable) in %.1f s (words %.1f s, merges %.1f s)\n",
                out, st.vocab_size, st.merges, st.files, (double)st.bytes / 1e6, st.skipped_binary,
                st.skipped_not_utf8, st.skipped_large, st.unreadable, clock_now() - t0, st.count_seconds,
                st.merge_seconds);
    return 0;
}

typedef struct {
    char *data;
    size_t len;
    int32_t *ids;
    size_t n;
} enc_file;

static const enc_file *sort_files;

static int by_size_desc(const void *a, const void *b) {
    size_t la = sort_files[*(const int *)a].len, lb = sort_files[*(const int *)b].len;
    return la < lb ? 1 : la > lb ? -1 : *(const int *)a - *(const int *)b;
}

static int cmd_encode(int argc, char **argv) {
    const char *tok_path = NULL;
    int threads = 0, stats = 0, quiet = 0, repeat = 1, cont = 0, special = 0;
    sc_arg args[] = {
        {"tokenizer", 't', SC_ARG_STR, &tok_path, "tokenizer.json", 1},
        {"special", 0, SC_ARG_FLAG, &special, "add the post_processor's tokens (BOS...) as HF's add_special_tokens=True", 0},
        {"cont", 0, SC_ARG_FLAG, &cont, "the text continues earlier text: no SentencePiece \"▁\" at its start (a FIM suffix)", 0},
        {"threads", 0, SC_ARG_INT, &threads, "files encoded in parallel (0 = all cores)", 0},
        {"stats", 0, SC_ARG_FLAG, &stats, "print bytes, tokens and encode MB/s on stderr", 0},
        {"quiet", 'q', SC_ARG_FLAG, &quiet, "do not print the ids (benchmarks)", 0},
        {"repeat", 0, SC_ARG_INT, &repeat, "encode everything this many times, report the best (benchmarks)", 0},
    };
    sc_cli cli = {"smallcoder tokenizer encode", "-t tokenizer.json [options] FILE...",
                  "Prints, for each FILE, one line of space-separated token ids. Special tokens written literally\n"
                  "in the text are matched; nothing is added at the start or end unless --special.",
                  args, sizeof args / sizeof args[0], 1, -1};
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS};
    sc_command cmd = {.cli = &cli, SC_COMMAND_RANGES(ranges)};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    if (special && cont) {
        fprintf(stderr, "smallcoder tokenizer encode: --special and --cont exclude each other (a continuation gets no BOS)\n");
        return 2;
    }
    int rc = 0;
    sc_tokenizer *tok;
    if (tokenizer_load(&tok, tok_path)) return fail("encode");
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (repeat < 1) repeat = 1;
    enc_file *f = sc_calloc((size_t)cmd.npos, sizeof *f);
    uint64_t bytes = 0;
    for (int i = 0; i < cmd.npos && !rc; i++) {
        rc = file_read_all(argv[i], &f[i].data, &f[i].len);
        bytes += f[i].len;
    }
    /* largest files first, so no thread is left with a big one at the end while the others wait */
    int *order = sc_malloc((size_t)cmd.npos * sizeof *order);
    for (int i = 0; i < cmd.npos; i++) order[i] = i;
    sort_files = f;
    qsort(order, (size_t)cmd.npos, sizeof *order, by_size_desc);
    double best = 1e30, best_cpu = 1e30;
    int failed = 0;
    char err[1024] = "";
    for (int r = 0; r < repeat && !rc && !failed; r++) {
        double t0 = clock_now(), c0 = cpu_s();
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
        for (int k = 0; k < cmd.npos; k++) {
            int i = order[k];
            free(f[i].ids);
            if ((special ? tokenizer_encode_special : cont ? tokenizer_encode_cont : tokenizer_encode)(
                    tok, f[i].data, f[i].len, &f[i].ids, &f[i].n)) {
#pragma omp critical
                {
                    failed = 1;
                    snprintf(err, sizeof err, "%s: %s", argv[i], sc_error());
                }
            }
        }
        double t = clock_now() - t0, c = cpu_s() - c0;
        if (t < best) best = t;
        if (c < best_cpu) best_cpu = c;
    }
    if (failed) rc = sc_fail("%s", err);
    uint64_t tokens = 0;
    for (int i = 0; i < cmd.npos && !rc; i++) {
        tokens += f[i].n;
        if (quiet) continue;
        for (size_t k = 0; k < f[i].n; k++) printf(k ? " %d" : "%d", f[i].ids[k]);
        putchar('\n');
    }
    if (!rc && fflush(stdout)) rc = sc_fail("stdout: write failed");
    if (!rc && stats)
        fprintf(stderr,
                "encoded %d files, %llu bytes -> %llu tokens (%.2f bytes/token) in %.3f s: %.2f MB/s, %d thread%s; "
                "cpu %.3f s: %.2f MB per cpu-second\n",
                cmd.npos, (unsigned long long)bytes, (unsigned long long)tokens,
                tokens ? (double)bytes / (double)tokens : 0.0, best, best > 0 ? (double)bytes / 1e6 / best : 0.0,
                threads, threads == 1 ? "" : "s", best_cpu, best_cpu > 0 ? (double)bytes / 1e6 / best_cpu : 0.0);
    for (int i = 0; i < cmd.npos; i++) free(f[i].data), free(f[i].ids);
    free(f);
    free(order);
    tokenizer_free(tok);
    return rc ? fail("encode") : 0;
}

static int cmd_decode(int argc, char **argv) {
    const char *tok_path = NULL;
    int cont = 0;
    sc_arg args[] = {{"tokenizer", 't', SC_ARG_STR, &tok_path, "tokenizer.json", 1},
                     {"cont", 0, SC_ARG_FLAG, &cont, "the ids continue earlier output: no Strip of the leading space", 0}};
    sc_cli cli = {"smallcoder tokenizer decode", "-t tokenizer.json [FILE]",
                  "Reads whitespace-separated token ids from FILE (stdin when absent) and writes the bytes they\n"
                  "stand for to stdout. Special tokens are written as their text.",
                  args, 2, 0, 1};
    sc_command cmd = {.cli = &cli};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    int rc = 0;
    sc_tokenizer *tok;
    if (tokenizer_load(&tok, tok_path)) return fail("decode");
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    char *text = NULL;
    rc = token_ids_read(cmd.npos ? argv[0] : "-", tokenizer_vocab_size(tok), &ids, &n);
    if (!rc) rc = (cont ? tokenizer_decode_cont : tokenizer_decode)(tok, ids, n, &text, &len);
    if (!rc && (fwrite(text, 1, len, stdout) != len || fflush(stdout))) rc = sc_fail("stdout: write failed");
    free(ids);
    free(text);
    tokenizer_free(tok);
    return rc ? fail("decode") : 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: smallcoder tokenizer train|encode|decode [options]   (each has --help)\n\n"
               "  train   train a byte-level BPE tokenizer on files/directories, write tokenizer.json\n"
               "  encode  print the token ids of files\n"
               "  decode  turn token ids back into bytes\n");
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(argv[1], "encode") == 0) return cmd_encode(argc - 1, argv + 1);
    if (strcmp(argv[1], "decode") == 0) return cmd_decode(argc - 1, argv + 1);
    fprintf(stderr, "smallcoder tokenizer: unknown subcommand '%s' (train, encode or decode)\n", argv[1]);
    return 2;
}
