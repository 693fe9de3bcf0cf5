/* args.c — the one option parser every subcommand uses (see args.h). */
#include "host/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host/error.h"

int64_t sc_parse_bytes(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0 || !isfinite(v)) return -1;
    static const struct { const char *suffix; double mult; } units[] = {
        {"", 1}, {"B", 1}, {"K", 1024.0}, {"KiB", 1024.0}, {"KB", 1e3}, {"M", 1048576.0}, {"MiB", 1048576.0},
        {"MB", 1e6}, {"G", 1073741824.0}, {"GiB", 1073741824.0}, {"GB", 1e9},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(end, units[i].suffix) == 0 && (units[i].suffix[0] || *end == 0))
            return v * units[i].mult < 9.2e18 ? (int64_t)(v * units[i].mult) : -1; /* no out-of-range cast */
    return -1;
}

static int parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v)) return -1;
    double mult = 1;
    if (*end == 'k' || *end == 'K') mult = 1e3, end++;
    else if (*end == 'M') mult = 1e6, end++;
    else if (*end == 'G') mult = 1e9, end++;
    if (*end) return -1;
    v *= mult;
    if (v != floor(v) || fabs(v) > 9.2e18) return -1;
    *out = (int64_t)v;
    return 0;
}

static void print_default(const sc_arg *a) {
    switch (a->type) {
    case SC_ARG_INT: printf(" (default %d)", *(int *)a->dst); break;
    case SC_ARG_I64: if (*(int64_t *)a->dst) printf(" (default %lld)", (long long)*(int64_t *)a->dst); break;
    case SC_ARG_BYTES: if (*(int64_t *)a->dst) printf(" (default %lld bytes)", (long long)*(int64_t *)a->dst); break;
    case SC_ARG_FLOAT: printf(" (default %g)", *(float *)a->dst); break;
    case SC_ARG_STR: if (*(const char **)a->dst) printf(" (default %s)", *(const char **)a->dst); break;
    case SC_ARG_ENUM: printf(" (default %s)", ((const sc_enum *)a->dst)->names[((const sc_enum *)a->dst)->value]); break;
    case SC_ARG_FLAG: case SC_ARG_LIST: break;
    }
}

int sc_enum_index(const char *opt, const char *const *names, const char *value) {
    int n = 0;
    while (names[n]) n++;
    for (int i = 0; i < n; i++)
        if (strcmp(value, names[i]) == 0) return i;
    char list[256];
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof list; i++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
    return sc_fail("--%s must be %s, got '%s'", opt, list, value);
}

void sc_args_help(const sc_cli *cli) {
    printf("usage: %s %s\n\n%s\n\noptions:\n", cli->command, cli->usage, cli->summary);
    for (int i = 0; i < cli->nargs; i++) {
        const sc_arg *a = &cli->args[i];
        static const char *meta[] = {"", " N", " N", " X", " S", " BYTES", " S", " S"}; /* by sc_arg_type */
        char lhs[64];
        if (a->shortname) snprintf(lhs, sizeof lhs, "-%c, --%s%s", a->shortname, a->name, meta[a->type]);
        else snprintf(lhs, sizeof lhs, "    --%s%s", a->name, meta[a->type]);
        printf("  %-28s %s%s", lhs, a->help, a->required ? " (required)" : "");
        if (!a->required) print_default(a);
        printf("\n");
    }
    printf("  %-28s %s\n", "-h, --help", "show this help and exit");
}

static const sc_arg *find_arg(const sc_cli *cli, const char *tok) {
    if (tok[0] == '-' && tok[1] == '-') {
        for (int i = 0; i < cli->nargs; i++)
            if (strcmp(cli->args[i].name, tok + 2) == 0) return &cli->args[i];
    } else if (tok[0] == '-' && tok[1] && !tok[2]) {
        for (int i = 0; i < cli->nargs; i++)
            if (cli->args[i].shortname == tok[1]) return &cli->args[i];
    }
    return NULL;
}

static int usage_error(const sc_cli *cli, const char *fmt, const char *what) {
    fprintf(stderr, "%s: ", cli->command);
    fprintf(stderr, fmt, what);
    fprintf(stderr, " (see %s --help)\n", cli->command);
    return 2;
}

int sc_args_parse(const sc_cli *cli, int argc, char **argv, int *npos) {
    int seen[128] = {0};
    int np = 0;
    for (int i = 1; i < argc; i++) {
        char *tok = argv[i];
        if (strcmp(tok, "-h") == 0 || strcmp(tok, "--help") == 0) {
            sc_args_help(cli);
            return 1;
        }
        if (strcmp(tok, "--") == 0) {
            while (++i < argc) argv[np++] = argv[i];
            break;
        }
        if (tok[0] != '-' || tok[1] == 0 || (tok[1] >= '0' && tok[1] <= '9')) {
            argv[np++] = tok;
            continue;
        }
        /* --name=value form */
        char namebuf[128];
        const char *value = NULL;
        const char *eq = strchr(tok, '=');
        if (eq && tok[1] == '-' && (size_t)(eq - tok) < sizeof namebuf) {
            memcpy(namebuf, tok, (size_t)(eq - tok));
            namebuf[eq - tok] = 0;
            value = eq + 1;
            tok = namebuf;
        }
        const sc_arg *a = find_arg(cli, tok);
        if (!a) return usage_error(cli, "unknown option %s", tok);
        seen[a - cli->args] = 1;
        if (a->type == SC_ARG_FLAG) {
            if (value) return usage_error(cli, "option %s takes no value", tok);
            *(int *)a->dst = 1;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) return usage_error(cli, "option %s needs a value", tok);
            value = argv[++i];
        }
        char *end;
        errno = 0;
        switch (a->type) {
        case SC_ARG_INT: {
            long v = strtol(value, &end, 10);
            if (end == value || *end || errno || v < -2147483647L || v > 2147483647L)
                return usage_error(cli, "option %s expects an integer", tok);
            *(int *)a->dst = (int)v;
            break;
        }
        case SC_ARG_I64:
            if (parse_i64(value, (int64_t *)a->dst)) return usage_error(cli, "option %s expects an integer (k/M/G suffix allowed)", tok);
            break;
        case SC_ARG_BYTES: {
            int64_t b = sc_parse_bytes(value);
            if (b < 0) return usage_error(cli, "option %s expects a size such as 1.75GiB or 512MiB", tok);
            *(int64_t *)a->dst = b;
            break;
        }
        case SC_ARG_FLOAT: {
            float v = strtof(value, &end);
            if (end == value || *end || errno || !isfinite(v)) return usage_error(cli, "option %s expects a number", tok);
            *(float *)a->dst = v;
            break;
        }
        case SC_ARG_STR: *(const char **)a->dst = value; break;
        case SC_ARG_ENUM: {
            sc_enum *e = a->dst;
            int v = sc_enum_index(a->name, e->names, value);
            if (v < 0) { /* the wording commands used before parsing moved here: no "see --help" */
                fprintf(stderr, "%s: %s\n", cli->command, sc_error());
                return 2;
            }
            e->value = v;
            break;
        }
        case SC_ARG_LIST: {
            sc_arg_list *l = a->dst;
            if (l->n >= SC_ARG_LIST_MAX) return usage_error(cli, "option %s given more than 16 times", tok);
            l->opt[l->n] = a->name, l->value[l->n++] = value;
            break;
        }
        case SC_ARG_FLAG: break;
        }
    }
    for (int i = 0; i < cli->nargs && i < 128; i++)
        if (cli->args[i].required && !seen[i]) return usage_error(cli, "missing required option --%s", cli->args[i].name);
    if (np < cli->min_positional) return usage_error(cli, "%s", np ? "too few arguments" : "missing argument");
    if (cli->max_positional >= 0 && np > cli->max_positional) return usage_error(cli, "unexpected argument '%s'", argv[cli->max_positional]);
    *npos = np;
    return 0;
}

const sc_arg_range *sc_arg_range_find(const sc_arg_range *r, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(r[i].name, name) == 0) return &r[i];
    return NULL;
}

int sc_args_check_ranges(const sc_cli *cli, const sc_arg_range *r, int n) {
    for (int i = 0; i < n; i++) {
        const sc_arg *a = NULL;
        for (int k = 0; k < cli->nargs && !a; k++)
            if (strcmp(cli->args[k].name, r[i].name) == 0) a = &cli->args[k];
        double v;
        if (!a) {
            fprintf(stderr, "%s: internal error: a range for unknown option --%s\n", cli->command, r[i].name);
            return 2;
        }
        switch (a->type) {
        case SC_ARG_INT: v = *(int *)a->dst; break;
        case SC_ARG_I64:
        case SC_ARG_BYTES: v = (double)*(int64_t *)a->dst; break;
        case SC_ARG_FLOAT: v = *(float *)a->dst; break;
        default: continue;
        }
        if (!(v >= r[i].min && v <= r[i].max)) {
            char val[32]; /* a float's value as typed (0.1, not 0.100000001490116) */
            snprintf(val, sizeof val, a->type == SC_ARG_FLOAT ? "%g" : "%.15g", v);
            fprintf(stderr, "%s: option --%s %s is out of range [%.15g, %.15g] (see %s --help)\n", cli->command,
                    a->name, val, r[i].min, r[i].max, cli->command);
            return 2;
        }
    }
    return 0;
}
